"""A new embedder (the tier changed): recompute every stored embedding from its chip.

Never mix embedders: a gallery holds the vectors of one model. Chips stored since version 3
of the people store are 224 px with the face's points, so every tier cuts its own framing
from them. A 150 px chip of before (dlib's framing, no points) serves only an embedder that
takes dlib's framing; under any other, the sample keeps the embedding of the embedder that
made it, tagged with that embedder, and is left out of matching (``Sample.usable``) until the
tier goes back or the person is enrolled again: a repair issue names who.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

import numpy as np
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from ..const import DOMAIN
from ..engine.errors import EngineError
from ..engine.face.recognizer import FaceRecognizer
from .people import People, Points

ISSUE_REENROLL: Final = "reenroll_for_tier"
# The tag of an embedding whose embedder is not known (a store that names none): never usable.
UNKNOWN_EMBEDDER: Final = "unknown"


def _array(points: Points | None) -> np.ndarray | None:
    return None if points is None else np.asarray(points, dtype=np.float64)


def reembed(people: People, recognizer: FaceRecognizer) -> int:
    """Re-embed every stored chip the recognizer can read; return how many were dropped.

    Runs in an executor. A sample whose chip cannot be read is dropped (it must not stop
    setup, and its embedding came from another model), but a negative is kept like a chip of
    before version 3 that this embedder cannot frame: tagged with the embedder of its
    embedding, so that its person waits for it to be enrolled again (never matched without it).
    """
    old, dropped = people.embedder or UNKNOWN_EMBEDDER, 0
    for person in people.people.values():
        for samples in (person.samples, person.negatives):
            kept = []
            for sample in samples:
                if sample.points is None and not recognizer.reads_old_chips:
                    sample.embedder = sample.embedder or old
                    kept.append(sample)
                    continue
                try:
                    chip = base64.b64decode(sample.chip, validate=True)
                    embedding = recognizer.embed_chip(
                        chip, _array(sample.points), _array(sample.landmarks)
                    )
                except (binascii.Error, EngineError):
                    if samples is person.negatives:
                        sample.embedder = sample.embedder or old
                        kept.append(sample)
                    else:
                        dropped += 1
                    continue
                sample.embedding = embedding.astype(float).tolist()
                sample.embedder = None
                kept.append(sample)
            samples[:] = kept
    return dropped


def update_reenroll_issue(hass: HomeAssistant, people: People) -> list[str]:
    """Raise (or clear) the repair issue naming the people to enroll again; return them."""
    waiting = people.waiting()
    if waiting:
        ir.async_create_issue(
            hass,
            DOMAIN,
            ISSUE_REENROLL,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_REENROLL,
            translation_placeholders={"people": ", ".join(waiting)},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_REENROLL)
    return waiting

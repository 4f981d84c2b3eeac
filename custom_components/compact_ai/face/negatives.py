"""Where each negative came from, so that deleting a person deletes their face everywhere.

A negative is a face that must never match its owner. It is tagged with its source: the
enrolled person it shows (``person:<id>``), else the upload it was taken from
(``upload:<id>``, one per ``enroll_negative`` call), or ``unknown`` (``UNKNOWN_SOURCE``) for
negatives stored by version 1, which kept no source. Deleting a person removes every
negative tagged with them, by tag, not by a distance computed at deletion time (a tier
change re-embeds every face and moves every distance; a tag stays).

Which person a negative shows is decided when faces change (a negative enrolled, a person
enrolled, the store loaded): a negative not yet tagged with a person is claimed by the
nearest *other* person whose samples lie within the recognizer's threshold. A person
enrolled after their photo became someone's negative claims it then.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Final

import numpy as np

from .people import Person, Sample

_PERSON: Final = "person:"


def person_source(person_id: str) -> str:
    """Return the source tag of a face that shows ``person_id``."""
    return f"{_PERSON}{person_id}"


def new_upload_source() -> str:
    """Return the source tag of one new upload (the files or snapshots of one call)."""
    return f"upload:{secrets.token_hex(4)}"


def snapshot(people: Mapping[str, Person], embedder: str | None) -> list[Person]:
    """Return the people with copied lists of their samples, for :func:`claims` in an executor.

    Only the samples ``embedder`` can use are copied (never mix embedders).
    """
    return [
        Person(
            p.person_id,
            p.name,
            [s for s in p.samples if s.usable(embedder)],
            [s for s in p.negatives if s.usable(embedder)],
        )
        for p in people.values()
    ]


def claims(people: list[Person], threshold: float) -> list[tuple[Sample, str]]:
    """Return the negatives an enrolled person claims, each with its new ``person:<id>`` tag.

    Pure (runs in an executor on a :func:`snapshot`); only negatives not yet tagged with a
    person are looked at, and a person never claims their own negatives.
    """
    rows = [s.embedding for p in people for s in p.samples]
    if not rows:
        return []
    gallery = np.asarray(rows, dtype=np.float64)
    owners = np.asarray([p.person_id for p in people for _ in p.samples])
    found: list[tuple[Sample, str]] = []
    for person in people:
        for negative in person.negatives:
            if negative.source.startswith(_PERSON):
                continue
            distances = np.linalg.norm(gallery - np.asarray(negative.embedding), axis=1)
            distances[owners == person.person_id] = np.inf
            nearest = int(np.argmin(distances))
            if distances[nearest] <= threshold:
                found.append((negative, person_source(str(owners[nearest]))))
    return found


def purge(people: Mapping[str, Person], person_id: str) -> int:
    """Remove every negative that shows ``person_id``; return how many were removed."""
    tag, removed = person_source(person_id), 0
    for person in people.values():
        kept = [negative for negative in person.negatives if negative.source != tag]
        removed += len(person.negatives) - len(kept)
        person.negatives = kept
    return removed

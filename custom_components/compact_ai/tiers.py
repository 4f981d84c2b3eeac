"""What the user is told about the tiers: the pack's measurements and a timing on this machine.

Only numbers leave this module, as form placeholders; every word is in translations/*.json.
Home Assistant parses translated strings with str.format rules (and drops or logs those that
do not parse), so the strings hold plain {name} placeholders: no ICU plural or select. The
forms therefore show tables of numbers, which need neither.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from . import const
from .const import TIERS
from .engine.errors import EngineError, ImageDecodeError
from .engine.face.household import HouseholdCheck, check_household
from .engine.face.image import decode_image
from .engine.face.recognizer import (
    DETECTOR_TASK,
    EMBEDDER_TASK,
    PROPOSER_TASK,
    FaceRecognizer,
)
from .engine.runtime.pack import ModelEntry, ModelPack

_LOGGER = logging.getLogger(__name__)
BENCHMARK_RUNS = 5
BENCHMARK_FRAME = (1920, 1080)  # every tier is timed on a 1080p JPEG, decoding included
FACE_TASKS = (DETECTOR_TASK, PROPOSER_TASK, EMBEDDER_TASK)
# BlazeFace's model card: the short-range detector is meant for faces within about 2 m of the
# camera, the full-range one for faces within about 5 m. The manifest names the variant.
REACH_M = {"short": 2.0, "full": 5.0}
# YuNet's reach depends on the pixels a tier gives it: in door frames (docs/door-distance.md) it
# found 95 % or more of the faces that were at least 20 px wide in its picture. A 15 cm face is
# 144 px wide at 1 m in a 1920x1080 frame from a camera with a 90 degree horizontal view.
YUNET_MIN_FACE_PX = 20
FACE_PX_AT_1M = 144
MISSING = "–"  # a value the pack does not have, or a tier that could not run
# person id -> that person's stored chips: JPEG as base64, points and landmarks in it
# (points None: a 150 px chip of before store version 3, see face/people.py)
Points = list[list[float]] | None
Household = Sequence[tuple[str, Sequence[tuple[str, Points, Points]]]]


@dataclass(frozen=True, slots=True)
class TierFacts:
    """What the pack says about one tier's face models on one backend."""

    accuracy: float | None  # share of the held-out face pairs judged right
    door_tar: float | None  # share of owners' door frames recognized at the unlock distance
    ms_per_face: float | None
    reach_m: float | None
    size_bytes: int
    models: frozenset[str]  # sha256 of every face model file and each config: equal, same results


@dataclass(frozen=True, slots=True)
class Timing:
    """One tier's scan of one frame on this machine."""

    ms: float
    faces: int
    household: HouseholdCheck | None = None  # the enrolled faces, left out one at a time


def reach_m(model: ModelEntry) -> float | None:
    """Return how far from a 1080p camera (90 degree view) a face detector finds faces."""
    variant = model.config.get("variant")
    pixels = model.config.get("detect_pixels")
    if variant == "yunet" and isinstance(pixels, int):
        width = math.sqrt(pixels * BENCHMARK_FRAME[0] / BENCHMARK_FRAME[1])
        return FACE_PX_AT_1M * width / BENCHMARK_FRAME[0] / YUNET_MIN_FACE_PX
    return REACH_M.get(str(variant))


def tier_facts(pack: ModelPack, backend: str) -> dict[str, TierFacts]:
    """Return the facts of every tier of ``pack`` that has face models for ``backend``."""
    facts: dict[str, TierFacts] = {}
    for name in TIERS:
        tier = pack.tiers.get(name)
        if tier is None or EMBEDDER_TASK not in tier.models:
            continue
        models = [tier.models[task] for task in FACE_TASKS if task in tier.models]
        files = [file for model in models for file in model.files.get(backend, ())]
        metrics = tier.models[EMBEDDER_TASK].metrics
        accuracy = metrics.get(f"lfw_accuracy_{backend}", metrics.get("lfw_accuracy"))
        door_tar = metrics.get(f"door_tar_{backend}", metrics.get("door_tar"))
        # With YuNet, BlazeFace only confirms its faces: YuNet's pixels decide the reach.
        proposer = tier.models.get(PROPOSER_TASK)
        reaches = [reach_m(proposer)] if proposer else [reach_m(model) for model in models]
        configs = [json.dumps(model.config, sort_keys=True) for model in models]
        facts[name] = TierFacts(
            accuracy=accuracy,
            door_tar=door_tar,
            ms_per_face=metrics.get(f"ms_per_face_{backend}"),
            reach_m=max((reach for reach in reaches if reach is not None), default=None),
            size_bytes=sum(file.size for file in files),
            models=frozenset(file.sha256 for file in files) | frozenset(configs),
        )
    return facts


def _number(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def tier_placeholders(backend: str) -> dict[str, str]:
    """Return {tier}_set/_accuracy/_door/_ms/_reach/_size for every tier (runs in an executor).

    Tiers with the same model set number use the same files with the same settings, so they
    behave the same.
    """
    try:
        facts = tier_facts(ModelPack.load(const.PACK_DIR), backend)
    except EngineError as err:
        _LOGGER.error("The model pack cannot be read: %s", err)
        facts = {}
    sets: list[frozenset[str]] = []
    placeholders: dict[str, str] = {}
    for name in TIERS:
        fact = facts.get(name)
        if fact is None:
            keys = ("set", "accuracy", "door", "ms", "reach", "size")
            placeholders.update({f"{name}_{key}": MISSING for key in keys})
            continue
        if fact.models not in sets:
            sets.append(fact.models)
        accuracy = None if fact.accuracy is None else fact.accuracy * 100
        door = None if fact.door_tar is None else fact.door_tar * 100
        placeholders.update(
            {
                f"{name}_set": str(sets.index(fact.models) + 1),
                f"{name}_accuracy": _number(accuracy, 1),
                f"{name}_door": _number(door, 0),
                f"{name}_ms": _number(fact.ms_per_face, 1),
                f"{name}_reach": _number(fact.reach_m, 1),
                f"{name}_size": _number(fact.size_bytes / 1e6, 1),
            }
        )
    return placeholders


def household_check(recognizer: FaceRecognizer, household: Household) -> HouseholdCheck:
    """Re-embed the household's stored chips with this tier; leave one out at its door.

    A chip this tier cannot frame (one of before store version 3 under an ArcFace tier) or
    cannot read is left out, as at re-embedding.
    """
    people = []
    for person, samples in household:
        rows = []
        for chip, points, landmarks in samples:
            try:
                data = base64.b64decode(chip, validate=True)
                rows.append(recognizer.embed_chip(data, _array(points), _array(landmarks)))
            except (binascii.Error, ImageDecodeError):
                continue
        people.append((person, np.asarray(rows).reshape(len(rows), -1)))
    return check_household(people, recognizer.unlock_threshold, recognizer.gallery.margin)


def _array(points: Points) -> np.ndarray | None:
    return None if points is None else np.asarray(points, dtype=np.float64)


def benchmark_frame(snapshot: bytes | None) -> bytes:
    """Return a 1920x1080 JPEG: the snapshot scaled into it (grey bars), or a grey frame."""
    grey = (128, 128, 128)
    picture = Image.new("RGB", BENCHMARK_FRAME, grey)
    if snapshot is not None:
        try:
            snapshot_image = Image.fromarray(decode_image(snapshot))
            picture = ImageOps.pad(snapshot_image, BENCHMARK_FRAME, color=grey)
        except EngineError:
            pass  # an unreadable snapshot: time the grey frame
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def benchmark(
    backend: str, snapshot: bytes | None, household: Household = ()
) -> dict[str, Timing | None]:
    """Time each tier on a 1080p frame made from ``snapshot`` (runs in an executor).

    The tiers take turns, run after run, so that no tier pays alone for a cold cache (timed
    one after the other, the first of two identical tiers measured 20 % slower). A tier that
    cannot run here is ``None``; why is logged. With ``household`` (the enrolled people's
    stored chips), each tier is also checked on them: leave one out at the tier's door
    distance (:mod:`.engine.face.household`).
    """
    frame = benchmark_frame(snapshot)
    results: dict[str, Timing | None] = dict.fromkeys(TIERS)
    try:
        pack = ModelPack.load(const.PACK_DIR)
    except EngineError as err:
        _LOGGER.error("The model pack cannot be read: %s", err)
        return results
    recognizers: dict[str, FaceRecognizer] = {}
    faces: dict[str, int] = {}
    for tier in TIERS:
        try:
            recognizers[tier] = FaceRecognizer.load(pack, tier, backend)
            faces[tier] = len(recognizers[tier].scan(frame).recognitions)  # and warm-up
        except EngineError as err:
            _LOGGER.warning("The %s tier cannot run on %s: %s", tier, backend, err)
            recognizers.pop(tier, None)
    times: dict[str, list[float]] = {tier: [] for tier in recognizers}
    for _ in range(BENCHMARK_RUNS):
        for tier, recognizer in recognizers.items():
            start = time.perf_counter()
            recognizer.scan(frame)
            times[tier].append((time.perf_counter() - start) * 1000)
    for tier, runs in times.items():
        checked = household_check(recognizers[tier], household) if household else None
        results[tier] = Timing(statistics.median(runs), faces[tier], checked)
    return results


def benchmark_placeholders(results: dict[str, Timing | None]) -> dict[str, str]:
    """Return {tier}_frame_ms, _faces, _household and _nearest for every tier.

    ``_household`` is "recognized / probed" of the enrolled faces, ``_nearest`` the closest
    other person as a multiple of the door distance: a dash without two faces to compare.
    """
    placeholders: dict[str, str] = {}
    for tier in TIERS:
        timing = results.get(tier)
        placeholders[f"{tier}_frame_ms"] = MISSING if timing is None else f"{timing.ms:.0f}"
        placeholders[f"{tier}_faces"] = MISSING if timing is None else str(timing.faces)
        check = None if timing is None else timing.household
        placeholders[f"{tier}_household"] = placeholders[f"{tier}_nearest"] = MISSING
        if check is not None and check.faces > 0:
            placeholders[f"{tier}_household"] = f"{check.recognized} / {check.faces}"
        if check is not None and math.isfinite(check.nearest_ratio):
            placeholders[f"{tier}_nearest"] = f"{check.nearest_ratio:.2f}"
    return placeholders

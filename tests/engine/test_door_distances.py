"""The door's distances from the manifest: a calibrated unlock distance is used as it is.

Each test loads the shipped pack through a copy of its manifest with one value changed (the
model files are the shipped ones, linked). A value the door cannot trust must fail the load,
never fall back to the wider default of ``threshold`` * ``UNLOCK_FACTOR``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from custom_components.compact_ai.const import PACK_DIR
from custom_components.compact_ai.engine.errors import ManifestError
from custom_components.compact_ai.engine.face.recognizer import (
    EMBEDDER_TASK,
    STRICT_FACTOR,
    UNLOCK_FACTOR,
    FaceRecognizer,
)
from custom_components.compact_ai.engine.runtime.pack import MANIFEST_NAME, ModelPack

TIER = "fast"
BACKEND = "onnxruntime"
WHERE = rf"tiers\.{TIER}\.models\.{EMBEDDER_TASK}\.config"
SHIPPED: dict[str, Any] = ModelPack.load(PACK_DIR).model(TIER, EMBEDDER_TASK).config


def _pack(tmp_path: Path, **changes: object) -> ModelPack:
    """Return the shipped pack with the embedder config changed (``None``: key removed)."""
    raw = json.loads((PACK_DIR / MANIFEST_NAME).read_text())
    config = raw["tiers"][TIER]["models"][EMBEDDER_TASK]["config"]
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    for item in PACK_DIR.iterdir():
        if item.name != MANIFEST_NAME:
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw))  # NaN and Infinity as JSON reads them
    return ModelPack.load(tmp_path)


def test_the_shipped_tiers_open_at_their_calibrated_distance() -> None:
    pack = ModelPack.load(PACK_DIR)
    for tier in ("accurate", "balanced", "fast"):
        config = pack.model(tier, EMBEDDER_TASK).config
        recognizer = FaceRecognizer.load(pack, tier, BACKEND)
        assert recognizer.unlock_threshold == config["unlock_threshold"]
        assert recognizer.threshold == config["threshold"]
        assert recognizer.strict_threshold == config["unlock_threshold"] * STRICT_FACTOR


@pytest.mark.parametrize("value", [0, 0.0])
def test_an_unlock_distance_of_zero_is_refused_not_replaced(tmp_path: Path, value: float) -> None:
    # Falling back would open at threshold * UNLOCK_FACTOR: a distance nobody calibrated.
    pack = _pack(tmp_path, unlock_threshold=value)
    with pytest.raises(ManifestError, match=rf"{WHERE}\.unlock_threshold: expected a distance"):
        FaceRecognizer.load(pack, TIER, BACKEND)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (-0.39, "-0.39"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        ("0.39", "'0.39'"),
        (True, "True"),
        ([0.39], r"\[0\.39\]"),
    ],
)
def test_an_unlock_distance_that_is_no_distance_is_refused(
    tmp_path: Path, value: object, shown: str
) -> None:
    pack = _pack(tmp_path, unlock_threshold=value)
    message = rf"{WHERE}\.unlock_threshold: expected a distance above 0, not {shown}$"
    with pytest.raises(ManifestError, match=message):
        FaceRecognizer.load(pack, TIER, BACKEND)


def test_an_unlock_distance_wider_than_the_threshold_is_refused(tmp_path: Path) -> None:
    wider = SHIPPED["threshold"] + 0.01
    pack = _pack(tmp_path, unlock_threshold=wider)
    message = rf"{WHERE}\.unlock_threshold: {wider} is wider than the threshold .* names a face"
    with pytest.raises(ManifestError, match=message):
        FaceRecognizer.load(pack, TIER, BACKEND)


@pytest.mark.parametrize("value", [math.nan, 0, -1.0])
def test_a_threshold_that_is_no_distance_is_refused(tmp_path: Path, value: float) -> None:
    # A NaN threshold would let any unlock distance pass the "not wider" check.
    pack = _pack(tmp_path, threshold=value)
    with pytest.raises(ManifestError, match=rf"{WHERE}\.threshold: expected a distance above 0"):
        FaceRecognizer.load(pack, TIER, BACKEND)


@pytest.mark.parametrize("value", [0.05, 1])
def test_a_present_unlock_distance_is_used_as_it_is(tmp_path: Path, value: float) -> None:
    threshold = max(SHIPPED["threshold"], value)  # the threshold itself is the widest allowed
    recognizer = FaceRecognizer.load(
        _pack(tmp_path, threshold=threshold, unlock_threshold=value), TIER, BACKEND
    )
    assert recognizer.unlock_threshold == value
    assert recognizer.strict_threshold == value * STRICT_FACTOR


def test_without_an_unlock_distance_the_door_uses_the_default_factor(tmp_path: Path) -> None:
    recognizer = FaceRecognizer.load(_pack(tmp_path, unlock_threshold=None), TIER, BACKEND)
    assert recognizer.unlock_threshold == SHIPPED["threshold"] * UNLOCK_FACTOR
    assert recognizer.threshold == SHIPPED["threshold"]

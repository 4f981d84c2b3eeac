"""The three tiers in a real Home Assistant: each recognizes on each backend, people move
between tiers by re-embedding their stored chips, and a household check per tier."""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_BACKEND, CONF_CAMERAS, CONF_TIER, TIERS
from custom_components.compact_ai.engine.face.align import TEMPLATE, align_face
from custom_components.compact_ai.engine.face.image import decode_image
from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from custom_components.compact_ai.face.people import STORAGE_KEY, STORAGE_VERSION

from .common import CAMERA, call, set_up_entry, show
from .conftest import ASTRONAUT_KEYPOINTS

MUSL = bool(os.environ.get("COMPACT_AI_SIMULATE_MUSL"))
PACK = ModelPack.load()


async def _reload_as(hass: HomeAssistant, entry: MockConfigEntry, tier: str) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_TIER: tier})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


def _samples(entry: MockConfigEntry) -> list[Any]:
    (person,) = entry.runtime_data.people.people.values()
    return list(person.samples)


def test_the_tiers_ship_three_embedders_and_say_how_to_feed_them() -> None:
    embedders = {tier: PACK.model(tier, "face_embedder") for tier in TIERS}
    assert len({e.files["ncnn"][-1].sha256 for e in embedders.values()}) == 3
    for entry in embedders.values():
        size = {"dlib_150": 150, "arcface_112": 112}[entry.config["alignment"]]
        assert entry.config["inputs"][0]["shape"][-2:] == [size, size]
        assert entry.metrics["door_tar"] > 0.6  # today's single embedder: 0.42-0.48


@pytest.mark.parametrize("backend", ["onnxruntime", "ncnn"])
@pytest.mark.parametrize("tier", TIERS)
async def test_each_tier_recognizes_on_each_backend(
    hass: HomeAssistant, camera_entity: str, photo_dir: Path, tier: str, backend: str
) -> None:
    if MUSL and backend == "onnxruntime":
        pytest.skip("onnxruntime cannot be imported on Home Assistant OS")
    options = {CONF_TIER: tier, CONF_CAMERAS: [camera_entity], CONF_BACKEND: backend}
    entry = await set_up_entry(hass, options)
    assert entry.runtime_data.backend == backend
    result = await call(
        hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")]
    )
    assert result["enrolled"] == 1
    await show(hass, photo_dir / "mirrored.jpg")
    (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]
    assert (face["person"], face["status"]) == ("Eileen", "match")
    recognizer = entry.runtime_data.faces.recognizer
    assert face["distance"] < recognizer.unlock_threshold  # near enough to open a door
    await show(hass, photo_dir / "hanks.jpg")
    (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]
    assert (face["person"], face["status"]) == (None, "unknown")


async def test_people_move_between_tiers_by_their_stored_chips(
    hass: HomeAssistant, camera_entity: str, photo_dir: Path, hass_storage: dict[str, Any]
) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]})
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    (fast,) = _samples(entry)
    stored = hass_storage[STORAGE_KEY]
    assert stored["version"] == STORAGE_VERSION
    (person,) = stored["data"]["people"].values()
    chip = decode_image(base64.b64decode(person["samples"][0]["chip"]))
    assert chip.shape == (224, 224, 3)  # one framing that holds every tier's chip

    for tier in ("accurate", "balanced", "fast"):
        await _reload_as(hass, entry, tier)
        (sample,) = _samples(entry)
        recognizer = entry.runtime_data.faces.recognizer
        assert entry.runtime_data.people.embedder == recognizer.embedder_id  # never mixed
        alignment = recognizer.pipeline.embedding.alignment.name
        assert alignment == PACK.model(tier, "face_embedder").config["alignment"]
        if recognizer.pipeline.embedding.normalize:
            assert np.linalg.norm(sample.embedding) == pytest.approx(1.0, abs=1e-4)
        await show(hass, photo_dir / "mirrored.jpg")
        (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]
        assert face["person"] == "Eileen", tier
    # back on fast: its embedding again, recomputed from the stored chip
    assert np.linalg.norm(np.subtract(sample.embedding, fast.embedding)) < 0.06


def _version_1_chip(photo: Path) -> str:
    """Her face as version 1 stored it: dlib's 150 px chip, JPEG, base64."""
    image = decode_image(photo.read_bytes())
    buffer = io.BytesIO()
    Image.fromarray(align_face(image, ASTRONAUT_KEYPOINTS)).save(buffer, "JPEG", quality=95)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@pytest.mark.parametrize("tier", ["accurate", "fast"])
async def test_a_version_1_store_is_migrated_and_re_embedded(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    tier: str,
) -> None:
    sample = {
        "embedding": [0.1] * 128,
        "chip": _version_1_chip(photo_dir / "astronaut.jpg"),
        "added": "2026-01-01T00:00:00+00:00",
    }
    person = {"name": "Eileen", "samples": [sample, dict(sample)], "negatives": []}
    hass_storage[STORAGE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"embedder": "dlib-before-tiers", "people": {"eileen_1": person}},
    }
    entry = await set_up_entry(hass, {CONF_TIER: tier, CONF_CAMERAS: [camera_entity]})
    first, _ = _samples(entry)
    np.testing.assert_allclose(first.points, TEMPLATE)  # where version 1 framed the face
    assert first.embedding != sample["embedding"]  # recomputed by this tier's embedder
    await show(hass, photo_dir / "mirrored.jpg")
    (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]
    assert (face["person"], face["status"]) == ("Eileen", "match")
    assert hass_storage[STORAGE_KEY]["version"] == STORAGE_VERSION


def test_household_check_on_every_tier(photo_dir: Path) -> None:
    """Two photos of her and one of him: each tier names both of hers at its door distance."""
    from custom_components.compact_ai.engine.face.recognizer import QualityGate
    from custom_components.compact_ai.tiers import household_check

    chips: dict[str, list[tuple[str, list[list[float]]]]] = {"eileen": [], "tom": []}
    loader = FaceRecognizer.load(PACK, "fast", "ncnn")
    for person, name in (
        ("eileen", "astronaut.jpg"),
        ("eileen", "mirrored.jpg"),
        ("tom", "hanks.jpg"),
    ):
        enrolled = loader.enroll((photo_dir / name).read_bytes(), QualityGate())
        assert not isinstance(enrolled, str)
        chip = base64.b64encode(enrolled.chip_jpeg).decode("ascii")
        chips[person].append((chip, enrolled.points.tolist()))
    for tier in TIERS:
        check = household_check(FaceRecognizer.load(PACK, tier, "ncnn"), list(chips.items()))
        assert (check.faces, check.recognized) == (2, 2), tier
        assert check.nearest_ratio > 1.2, tier  # Tom is far outside the door distance

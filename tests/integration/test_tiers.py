"""Tiers with different embedders in a real Home Assistant: each recognizes on each backend,
people move between embedders by their stored chips, old chips never mix embedders, and a
household check per tier.

Until ``build-pack`` ships SFace (issue 20), the pack here is the shipped one with accurate's
embedder replaced by SFace as the toolkit imports it (fp32, OpenCV Zoo's file and threshold):
dlib on balanced and fast, SFace on accurate, each with its own framing.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_TIER,
    DOMAIN,
    PACK_DIR,
    TIERS,
)
from custom_components.compact_ai.engine.face.align import align_face
from custom_components.compact_ai.engine.face.image import decode_image
from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer, QualityGate
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from custom_components.compact_ai.face.people import STORAGE_KEY, STORAGE_VERSION
from custom_components.compact_ai.face.reembed import ISSUE_REENROLL

from .common import CAMERA, call, set_up_entry, show
from .conftest import ASTRONAUT_KEYPOINTS

MUSL = bool(os.environ.get("COMPACT_AI_SIMULATE_MUSL"))
SFACE_TIER = "accurate"


@pytest.fixture(scope="module")
def tiers_pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelPack]:
    """The shipped pack with the reference SFace on accurate and dlib's net on the others.

    Two embedders whatever the shipped pack holds. Made before Home Assistant's check for
    blocking calls starts (module scope).
    """
    from tools.compact.pack.reference import (
        REFERENCE_TIER,
        SFACE_TIER as REFERENCE_SFACE,
        build_reference_pack,
    )

    reference = build_reference_pack()
    root = tmp_path_factory.mktemp("pack") / "pack"
    shutil.copytree(PACK_DIR, root, symlinks=True)
    _link_embedder(reference, REFERENCE_SFACE, root, "sface", [SFACE_TIER])
    others = [tier for tier in TIERS if tier != SFACE_TIER]
    _link_embedder(reference, REFERENCE_TIER, root, "dlib", others)
    return root, ModelPack.load(root)


def _link_embedder(reference: Path, source: str, root: Path, name: str, tiers: list[str]) -> None:
    """List the reference pack's embedder of tier ``source`` as ``tiers``' embedder."""
    from tools.compact.pack.writer import add_model

    embedder = ModelPack.load(reference).model(source, "face_embedder")
    folder = root / name
    folder.mkdir()
    files: dict[str, list[Path]] = {}
    for backend, records in embedder.files.items():
        for record in records:
            (folder / Path(record.path).name).symlink_to(reference / record.path)
        files[backend] = [folder / Path(record.path).name for record in records]
    for tier in tiers:
        add_model(root, tier, "face_embedder", files, config=embedder.config, metrics={})


@pytest.fixture
def pack(tiers_pack: tuple[Path, ModelPack]) -> Iterator[ModelPack]:
    root, loaded = tiers_pack
    with patch("custom_components.compact_ai.const.PACK_DIR", root):
        yield loaded


async def _reload_as(hass: HomeAssistant, entry: MockConfigEntry, tier: str) -> None:
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_TIER: tier})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


def _samples(entry: MockConfigEntry) -> list[Any]:
    (person,) = entry.runtime_data.people.people.values()
    return list(person.samples)


async def _seen(hass: HomeAssistant, photo: Path) -> dict[str, Any]:
    await show(hass, photo)
    (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]
    return dict(face)


async def test_the_test_pack_has_two_embedders_that_say_how_to_feed_them(
    hass: HomeAssistant, pack: ModelPack
) -> None:
    embedders = {tier: pack.model(tier, "face_embedder") for tier in TIERS}
    assert len({e.files["ncnn"][-1].sha256 for e in embedders.values()}) == 2
    for tier, entry in embedders.items():
        alignment = entry.config.get("alignment", "dlib_150")
        assert alignment == ("arcface_112" if tier == SFACE_TIER else "dlib_150")
        size = {"dlib_150": 150, "arcface_112": 112}[alignment]
        assert entry.config["inputs"][0]["shape"][-2:] == [size, size]
        await hass.async_add_executor_job(pack.verify, tier)  # every sha256 matches


@pytest.mark.parametrize("backend", ["onnxruntime", "ncnn"])
@pytest.mark.parametrize("tier", TIERS)
async def test_each_tier_recognizes_on_each_backend(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    pack: ModelPack,
    tier: str,
    backend: str,
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
    face = await _seen(hass, photo_dir / "mirrored.jpg")
    assert (face["person"], face["status"]) == ("Eileen", "match")
    recognizer = entry.runtime_data.faces.recognizer
    assert face["distance"] < recognizer.unlock_threshold  # near enough to open a door
    face = await _seen(hass, photo_dir / "hanks.jpg")
    assert (face["person"], face["status"]) == (None, "unknown")


async def test_people_move_between_embedders_by_their_stored_chips(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,
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
        assert alignment == pack.model(tier, "face_embedder").config.get("alignment", "dlib_150")
        if recognizer.pipeline.embedding.normalize:
            assert np.linalg.norm(sample.embedding) == pytest.approx(1.0, abs=1e-4)
            assert np.linalg.norm(np.subtract(sample.embedding, fast.embedding)) > 1.0
        face = await _seen(hass, photo_dir / "mirrored.jpg")
        assert face["person"] == "Eileen", tier
    # back on fast: its embedding again, recomputed from the stored chip
    assert np.linalg.norm(np.subtract(sample.embedding, fast.embedding)) < 0.06


def _version_2_chip(photo: Path) -> str:
    """Her face as store versions 1 and 2 kept it: dlib's 150 px chip, JPEG, base64."""
    image = decode_image(photo.read_bytes())
    buffer = io.BytesIO()
    Image.fromarray(align_face(image, ASTRONAUT_KEYPOINTS)).save(buffer, "JPEG", quality=95)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _version_2_store(photo_dir: Path, embedder: str, samples: int = 2) -> dict[str, Any]:
    sample = {
        "embedding": [0.1] * 128,
        "chip": _version_2_chip(photo_dir / "astronaut.jpg"),
        "added": "2026-01-01T00:00:00+00:00",
    }
    negative = {**sample, "source": "upload:0a1b2c3d"}
    person = {
        "name": "Eileen",
        "samples": [dict(sample) for _ in range(samples)],
        "negatives": [negative],
    }
    return {
        "version": 2,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"embedder": embedder, "people": {"eileen_1": person}},
    }


async def _enroll_her_again(hass: HomeAssistant, photo_dir: Path) -> Any:
    """Add Eileen's photo to her stored faces, as the repair issue asks."""
    files = [str(photo_dir / "astronaut.jpg")]
    return await call(hass, "enroll_face", name="Eileen", files=files, add_to_existing=True)


def _reenroll_issue(hass: HomeAssistant) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_REENROLL)


async def test_a_version_2_store_keeps_working_on_dlib_and_never_mixes_with_sface(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,
) -> None:
    """Chips of before version 3 have no points: a dlib tier re-embeds them, SFace cannot.

    Under SFace her old samples and negative stay out of matching (their vectors are dlib's)
    and a repair issue names her until both are enrolled again (she is not matched before:
    her negative could not keep its look-alike out; a new negative does not replace it, she is
    deleted and enrolled again); dlib's tier takes her back.
    """
    hass_storage[STORAGE_KEY] = _version_2_store(photo_dir, "dlib-of-an-older-pack")
    entry = await set_up_entry(hass, {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]})
    first, _ = _samples(entry)
    assert first.points is None and first.embedder is None
    assert first.embedding != [0.1] * 128  # recomputed from the 150 px chip by fast's dlib
    (negative,) = next(iter(entry.runtime_data.people.people.values())).negatives
    assert negative.source == "upload:0a1b2c3d"  # version 2's negatives keep their source
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] == "Eileen"
    assert _reenroll_issue(hass) is None
    dlib = entry.runtime_data.faces.recognizer.embedder_id

    await _reload_as(hass, entry, SFACE_TIER)
    first, second = _samples(entry)
    assert first.embedder == second.embedder == dlib  # kept, tagged, not mixed
    assert entry.runtime_data.people.embedder != dlib
    assert entry.runtime_data.faces.recognizer.gallery.people == ()
    face = await _seen(hass, photo_dir / "mirrored.jpg")
    assert (face["person"], face["status"]) == (None, "unknown")
    issue = _reenroll_issue(hass)
    assert issue is not None and issue.translation_placeholders == {"people": "Eileen"}
    stored = hass_storage[STORAGE_KEY]
    assert stored["version"] == STORAGE_VERSION
    (person,) = stored["data"]["people"].values()
    assert person["samples"][0]["embedder"] == dlib and "points" not in person["samples"][0]

    await _enroll_her_again(hass, photo_dir)
    (sample,) = _samples(entry)  # the samples SFace could not use are replaced
    assert sample.points is not None and sample.embedder is None
    assert _reenroll_issue(hass) is not None  # her old negative is still dlib's
    # and left out, it cannot keep its look-alike out: she waits for it (test_attack_tiers.py)
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] is None
    hanks = [str(photo_dir / "hanks.jpg")]
    await call(hass, "enroll_negative", name="Eileen", files=hanks)
    old, new = next(iter(entry.runtime_data.people.people.values())).negatives
    assert old.embedder == dlib and new.embedder is None and new.points is not None
    assert _reenroll_issue(hass) is not None  # a new negative does not replace an old one
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] is None
    await call(hass, "delete_person", name="Eileen")  # deleted, enrolled again with them all
    await _enroll_her_again(hass, photo_dir)
    await call(hass, "enroll_negative", name="Eileen", files=hanks)
    assert _reenroll_issue(hass) is None
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] == "Eileen"

    await _reload_as(hass, entry, "fast")
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] == "Eileen"


async def test_a_version_2_store_set_up_on_sface_tells_who_to_enroll_again(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,
) -> None:
    hass_storage[STORAGE_KEY] = _version_2_store(photo_dir, "dlib-of-an-older-pack")
    entry = await set_up_entry(hass, {CONF_TIER: SFACE_TIER, CONF_CAMERAS: [camera_entity]})
    assert {s.embedder for s in _samples(entry)} == {"dlib-of-an-older-pack"}
    assert _samples(entry)[0].embedding == [0.1] * 128  # left as its embedder made it
    assert _reenroll_issue(hass) is not None
    face = await _seen(hass, photo_dir / "mirrored.jpg")
    assert face["person"] is None

    await _reload_as(hass, entry, "balanced")  # a dlib tier reads the old chips again
    assert {s.embedder for s in _samples(entry)} == {None}
    assert _reenroll_issue(hass) is None
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] == "Eileen"


async def test_household_check_on_every_tier(
    hass: HomeAssistant, photo_dir: Path, pack: ModelPack
) -> None:
    """Two photos of her and one of him: each tier names both of hers at its door distance."""
    await hass.async_add_executor_job(_household_check_on_every_tier, photo_dir, pack)


def _household_check_on_every_tier(photo_dir: Path, pack: ModelPack) -> None:
    from custom_components.compact_ai.tiers import household_check

    chips: dict[str, list[tuple[str, Any, Any]]] = {"eileen": [], "tom": []}
    loader = FaceRecognizer.load(pack, "fast", "ncnn")
    for person, name in (
        ("eileen", "astronaut.jpg"),
        ("eileen", "mirrored.jpg"),
        ("tom", "hanks.jpg"),
    ):
        enrolled = loader.enroll((photo_dir / name).read_bytes(), QualityGate())
        assert not isinstance(enrolled, str)
        chip = base64.b64encode(enrolled.chip_jpeg).decode("ascii")
        landmarks = None if enrolled.landmarks is None else enrolled.landmarks.tolist()
        chips[person].append((chip, enrolled.points.tolist(), landmarks))
    for tier in TIERS:
        check = household_check(FaceRecognizer.load(pack, tier, "ncnn"), list(chips.items()))
        assert (check.faces, check.recognized) == (2, 2), tier
        assert check.nearest_ratio > 1.2, tier  # Tom is far outside the door distance


async def test_a_full_person_of_version_2_can_be_enrolled_again_on_sface(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,
) -> None:
    """Twenty old samples SFace cannot use leave room for new ones, which replace them."""
    hass_storage[STORAGE_KEY] = _version_2_store(photo_dir, "dlib-of-an-older-pack", 20)
    entry = await set_up_entry(hass, {CONF_TIER: SFACE_TIER, CONF_CAMERAS: [camera_entity]})
    assert len(_samples(entry)) == 20
    result = await _enroll_her_again(hass, photo_dir)
    assert result["enrolled"] == 1
    (sample,) = _samples(entry)
    assert sample.embedder is None
    await call(hass, "enroll_negative", name="Eileen", files=[str(photo_dir / "hanks.jpg")])
    (person,) = entry.runtime_data.people.people.values()
    assert [n.embedder is None for n in person.negatives] == [False, True]  # both kept
    assert (await _seen(hass, photo_dir / "mirrored.jpg"))["person"] is None  # she waits

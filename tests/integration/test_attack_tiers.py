"""Attacks on the door through a tier change: faces that must never open it stay refused.

A look-alike's photos stored as Eileen's negatives by store version 2 (dlib's 150 px chips)
keep the look-alike out on dlib. SFace cannot read those chips; when Eileen is enrolled again
on SFace (what the repair issue asks), her old negatives must not silently stop counting.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from PIL import Image

from custom_components.compact_ai.const import CONF_CAMERAS, CONF_TIER, CONF_UNLOCK
from custom_components.compact_ai.engine.face.align import align_face
from custom_components.compact_ai.engine.face.image import decode_image
from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from custom_components.compact_ai.face.people import STORAGE_KEY

from .common import call, set_up_entry
from .test_door import door_event, scan, unlock_options
from .test_tiers import (  # noqa: F401
    SFACE_TIER,
    _enroll_her_again,
    _reenroll_issue,
    _reload_as,
    _version_2_store,
    pack,
    tiers_pack,
)

LOOK_ALIKE = ("mirrored.jpg", "turned.jpg")  # the look-alike's frames at the door


def _version_2_chips(models: ModelPack, photos: list[Path]) -> list[str]:
    """Each photo's face as store version 2 kept it: dlib's 150 px chip (JPEG, base64)."""
    pipeline = FaceRecognizer.load(models, "fast", "ncnn").pipeline
    chips = []
    for photo in photos:
        image = decode_image(photo.read_bytes())
        (face,) = pipeline.detect(image)
        buffer = io.BytesIO()
        Image.fromarray(align_face(image, face.keypoints)).save(buffer, "JPEG", quality=95)
        chips.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return chips


def _version_2_person(name: str, own: str, negatives: list[tuple[str, str]]) -> dict[str, Any]:
    """A person as store version 2 kept them: dlib's chips, negatives by upload source."""
    added = "2026-01-01T00:00:00+00:00"
    return {
        "name": name,
        "samples": [{"embedding": [0.1] * 128, "chip": own, "added": added}],
        "negatives": [
            {"embedding": [0.1] * 128, "chip": chip, "added": added, "source": source}
            for source, chip in negatives
        ],
    }


def _version_2_people(people: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": 2,
        "minor_version": 1,
        "key": STORAGE_KEY,
        "data": {"embedder": "dlib-of-an-older-pack", "people": people},
    }


async def _look_alike_at_the_door(hass: HomeAssistant, photo_dir: Path) -> None:
    for photo in LOOK_ALIKE:
        await scan(hass, photo_dir / photo)


async def test_negatives_sface_cannot_read_still_keep_the_look_alike_out(
    hass: HomeAssistant,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,  # noqa: F811
) -> None:
    photos = [photo_dir / name for name in ("astronaut.jpg", *LOOK_ALIKE)]
    own, *look_alike = await hass.async_add_executor_job(_version_2_chips, pack, photos)
    negatives = [("upload:0a1b2c3d", chip) for chip in look_alike]
    hass_storage[STORAGE_KEY] = _version_2_people(
        {"eileen_1": _version_2_person("Eileen", own, negatives)}
    )
    door = unlock_options(door_lock, liveness=False, cooldown=0)
    options = {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity], CONF_UNLOCK: door}
    entry = await set_up_entry(hass, options)
    await _look_alike_at_the_door(hass, photo_dir)  # on dlib her negatives refuse them
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "unknown_face"

    await _reload_as(hass, entry, SFACE_TIER)
    # The repair issue asks to enroll her again; she is enrolled again from her own photo.
    assert _reenroll_issue(hass) is not None
    await _enroll_her_again(hass, photo_dir)
    await hass.async_block_till_done()
    await _look_alike_at_the_door(hass, photo_dir)
    assert hass.states.get(door_lock).state == "locked"  # her negatives still count
    assert _reenroll_issue(hass) is not None  # and the issue still says to enroll again


async def test_a_negative_whose_chip_cannot_be_read_still_keeps_the_look_alike_out(
    hass: HomeAssistant,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,  # noqa: F811
) -> None:
    """A damaged stored chip cannot be re-embedded: her negative must not just vanish."""
    entry = await set_up_entry(hass, {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]})
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    files = [str(photo_dir / photo) for photo in LOOK_ALIKE]
    assert (await call(hass, "enroll_negative", name="Eileen", files=files))["enrolled"] == 2
    door = unlock_options(door_lock, liveness=False, cooldown=0)
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_UNLOCK: door})
    await hass.async_block_till_done()
    await _look_alike_at_the_door(hass, photo_dir)
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "unknown_face"

    (person,) = hass_storage[STORAGE_KEY]["data"]["people"].values()
    for negative in person["negatives"]:  # the stored chips damaged, their points intact
        negative["chip"] = base64.b64encode(b"\xff\xd8 not a JPEG").decode("ascii")
    await _reload_as(hass, entry, SFACE_TIER)
    await _look_alike_at_the_door(hass, photo_dir)
    assert hass.states.get(door_lock).state == "locked"
    assert _reenroll_issue(hass) is not None  # she is named: enroll her negatives again


async def test_a_store_that_names_no_embedder_never_mixes_its_vectors_into_sface(
    hass: HomeAssistant,
    camera_entity: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,  # noqa: F811
) -> None:
    """dlib's vectors of a store that does not say whose they are stay out of SFace's gallery."""
    hass_storage[STORAGE_KEY] = _version_2_store(photo_dir, None)  # type: ignore[arg-type]
    entry = await set_up_entry(hass, {CONF_TIER: SFACE_TIER, CONF_CAMERAS: [camera_entity]})
    assert entry.runtime_data.faces.recognizer.gallery.people == ()
    assert _reenroll_issue(hass) is not None


async def test_a_look_alike_waiting_to_be_enrolled_again_is_not_let_in_as_her(
    hass: HomeAssistant,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,  # noqa: F811
) -> None:
    """Her twin, enrolled but not authorized, waits for re-enrollment: out of the gallery,
    the twin no longer makes her face ambiguous, so nobody may open the door meanwhile."""
    (own,) = await hass.async_add_executor_job(
        _version_2_chips, pack, [photo_dir / "astronaut.jpg"]
    )
    hass_storage[STORAGE_KEY] = _version_2_people(
        {
            "eileen_1": _version_2_person("Eileen", own, []),
            "twin_1": _version_2_person("Twin", own, []),
        }
    )
    door = unlock_options(door_lock, liveness=False, cooldown=0)
    options = {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity], CONF_UNLOCK: door}
    entry = await set_up_entry(hass, options)
    await _look_alike_at_the_door(hass, photo_dir)  # on dlib the twin makes it ambiguous
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "ambiguous"

    await _reload_as(hass, entry, SFACE_TIER)
    await _enroll_her_again(hass, photo_dir)  # only Eileen, who needs the door
    await hass.async_block_till_done()
    await _look_alike_at_the_door(hass, photo_dir)
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "reenroll_pending"
    issue = _reenroll_issue(hass)
    assert issue is not None and issue.translation_placeholders == {"people": "Twin"}

    await call(hass, "delete_person", name="Twin")  # now nobody waits: she may come in
    await hass.async_block_till_done()
    assert _reenroll_issue(hass) is None
    await _look_alike_at_the_door(hass, photo_dir)
    assert door_event(hass)["reason"] == "matched"


async def test_a_new_negative_does_not_drop_the_old_ones(
    hass: HomeAssistant,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    hass_storage: dict[str, Any],
    pack: ModelPack,  # noqa: F811
) -> None:
    """Her two look-alikes' negatives are dlib's; adding one again must not free the other."""
    photos = [photo_dir / name for name in ("astronaut.jpg", "mirrored.jpg", "hanks.jpg")]
    own, look_alike, other = await hass.async_add_executor_job(_version_2_chips, pack, photos)
    negatives = [("upload:aaaaaaaa", look_alike), ("upload:bbbbbbbb", other)]
    hass_storage[STORAGE_KEY] = _version_2_people(
        {"eileen_1": _version_2_person("Eileen", own, negatives)}
    )
    door = unlock_options(door_lock, liveness=False, cooldown=0)
    options = {CONF_TIER: SFACE_TIER, CONF_CAMERAS: [camera_entity], CONF_UNLOCK: door}
    await set_up_entry(hass, options)
    await _enroll_her_again(hass, photo_dir)
    await call(hass, "enroll_negative", name="Eileen", files=[str(photo_dir / "hanks.jpg")])
    await hass.async_block_till_done()
    assert _reenroll_issue(hass) is not None  # the mirrored look-alike's negative still waits
    await _look_alike_at_the_door(hass, photo_dir)
    assert hass.states.get(door_lock).state == "locked"

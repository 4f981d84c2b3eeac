"""Attacks on who may open the door: non-admin users, name tricks, deleted people, leaks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.compact_ai.const import CONF_CAMERAS, CONF_TIER, CONF_UNLOCK, DOMAIN
from custom_components.compact_ai.face.people import STORAGE_KEY as PEOPLE_KEY, People

from .common import call, show
from .test_door import door_event, scan, setup_door, unlock_options

CHANGING_SERVICES: dict[str, dict[str, Any]] = {
    "enroll_face": {"name": "Mallory", "files": ["{photos}/hanks.jpg"]},
    "enroll_negative": {"name": "Eileen", "files": ["{photos}/hanks.jpg"]},
    "delete_person": {"name": "Eileen"},
    "scan": {},
    "add_voice_phrase": {"phrase": "open sesame"},
    "remove_voice_phrase": {"phrase": "open sesame"},
    "add_voice_recording": {"phrase": "open sesame", "file": "{photos}/x.wav"},
    "record_voice_samples": {"phrase": "open sesame"},
    "train_voice_commands": {},
    "reset_voice_commands": {},
}


@pytest.mark.parametrize("service", CHANGING_SERVICES)
async def test_non_admin_user_cannot_change_anything(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    hass_read_only_user: MockUser,
    service: str,
) -> None:
    data = {
        key: [v.format(photos=photo_dir) for v in value]
        if isinstance(value, list)
        else value.format(photos=photo_dir)
        for key, value in CHANGING_SERVICES[service].items()
    }
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN, service, data, blocking=True, context=Context(user_id=hass_read_only_user.id)
        )
    assert loaded_entry.runtime_data.people.people == {}


async def test_adding_to_an_existing_person_must_be_explicit(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "hanks.jpg")])
    assert err.value.translation_key == "person_exists"
    result = await call(
        hass,
        "enroll_face",
        name="Eileen",
        files=[str(photo_dir / "mirrored.jpg")],
        add_to_existing=True,
    )
    assert result["enrolled"] == 1
    assert (await call(hass, "list_people"))["people"][0]["samples"] == 2


async def test_negatives_need_an_enrolled_person(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_negative", name="Nobody", files=[str(photo_dir / "hanks.jpg")])
    assert err.value.translation_key == "person_not_found"
    assert loaded_entry.runtime_data.people.people == {}


@pytest.mark.parametrize("other", ["eileen", "EILEEN", "Eileen!"])
async def test_a_name_that_folds_into_another_person_is_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, other: str
) -> None:
    """ "eileen" must never join "Eileen": that was how anyone became an authorized person."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            "enroll_face",
            name=other,
            files=[str(photo_dir / "hanks.jpg")],
            add_to_existing=True,
        )
    assert err.value.translation_key == "name_collision"
    assert err.value.translation_placeholders == {"name": other, "existing": "Eileen"}
    assert (await call(hass, "list_people"))["people"][0]["samples"] == 1


async def test_deleted_person_re_enrolled_with_another_face_is_not_authorized(
    hass: HomeAssistant, camera_entity: str, door_lock: str, photo_dir: Path
) -> None:
    entry = await setup_door(hass, camera_entity, door_lock, photo_dir, liveness=False)
    assert await call(hass, "delete_person", name="Eileen") == {"deleted": "Eileen"}
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "hanks.jpg")])
    await scan(hass, photo_dir / "hanks.jpg")
    await scan(hass, photo_dir / "hanks.jpg")
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "not_authorized"
    assert entry.options[CONF_UNLOCK]["people"] == []
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "door_without_people")
    assert issue is not None
    assert await hass.config_entries.async_reload(entry.entry_id)  # still true after a restart
    await hass.async_block_till_done()
    await scan(hass, photo_dir / "hanks.jpg")
    await scan(hass, photo_dir / "hanks.jpg")
    assert hass.states.get(door_lock).state == "locked"


async def test_delete_removes_presence_and_the_face_from_other_negatives(
    hass: HomeAssistant, camera_entity: str, door_lock: str, photo_dir: Path
) -> None:
    entry = await setup_door(
        hass,
        camera_entity,
        door_lock,
        photo_dir,
        presence={"Eileen": "device_tracker.eileen_phone"},
    )
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    await call(hass, "enroll_negative", name="Tom", files=[str(photo_dir / "mirrored.jpg")])
    assert await call(hass, "delete_person", name="Eileen") == {"deleted": "Eileen"}
    assert entry.options[CONF_UNLOCK]["presence"] == {}
    tom = entry.runtime_data.people.find("Tom")
    assert tom is not None and tom.negatives == []  # Eileen's face is gone everywhere


async def test_names_in_old_options_become_person_ids(
    hass: HomeAssistant, camera_entity: str, door_lock: str, photo_dir: Path
) -> None:
    entry = await setup_door(
        hass,
        camera_entity,
        door_lock,
        photo_dir,
        presence={"Eileen": "device_tracker.eileen_phone"},
        liveness=False,  # a photo edit cannot show real head motion (test_liveness.py)
    )
    eileen = entry.runtime_data.people.find("Eileen")
    assert eileen is not None and eileen.person_id != "Eileen"
    assert entry.options[CONF_UNLOCK]["people"] == [eileen.person_id]
    assert entry.options[CONF_UNLOCK]["presence"] == {
        eileen.person_id: "device_tracker.eileen_phone"
    }
    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "unlocked"
    assert door_event(hass)["person"] == "Eileen"


async def test_old_options_with_one_frame_and_liveness_require_two(
    hass: HomeAssistant, camera_entity: str, door_lock: str, photo_dir: Path
) -> None:
    """Saved before the form refused it, k=1 with liveness neither crashes nor weakens."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        options={
            CONF_TIER: "balanced",
            CONF_CAMERAS: [camera_entity],
            CONF_UNLOCK: unlock_options(door_lock, frames_required=1, frames_window=1),
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    door = entry.runtime_data.door
    assert door is not None and door.policy.k == 2 and door.policy.n == 2


async def test_a_person_being_deleted_cannot_unlock_while_the_store_is_written(
    hass: HomeAssistant, camera_entity: str, door_lock: str, photo_dir: Path
) -> None:
    await setup_door(hass, camera_entity, door_lock, photo_dir, liveness=False)
    original = People.async_save
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_save(self: People) -> None:  # inject a slow disk (a large store, an SD card)
        entered.set()
        await release.wait()
        await original(self)

    with patch.object(People, "async_save", slow_save):
        deleting = asyncio.ensure_future(call(hass, "delete_person", name="Eileen"))
        await entered.wait()
        for photo in ("astronaut.jpg", "turned.jpg"):
            await show(hass, photo_dir / photo)
            await call(hass, "scan")
        state = hass.states.get(door_lock).state
        release.set()
        assert await deleting == {"deleted": "Eileen"}
    assert state == "locked"


async def test_a_name_stored_by_an_older_version_in_nfd_can_still_be_deleted(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    hass_storage: dict[str, Any],
) -> None:
    await call(hass, "enroll_face", name="Zo\u00eb", files=[str(photo_dir / "astronaut.jpg")])
    await hass.async_block_till_done()
    for person in hass_storage[PEOPLE_KEY]["data"]["people"].values():
        person["name"] = "Zoe\u0308"  # "Zoë" decomposed, as an older version kept it
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert await call(hass, "delete_person", name="Zo\u00eb") == {"deleted": "Zo\u00eb"}

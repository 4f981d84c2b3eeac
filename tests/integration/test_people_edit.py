"""The People page: who may open it, renaming, deleting, and the door page's way there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.compact_ai.const import (
    CONF_PEOPLE,
    CONF_PRESENCE,
    CONF_UNLOCK,
    DOMAIN,
)

from .common import call, show
from .people_flow import choose, people_page, submit, table_rows
from .test_door import door_event, scan, unlock_options


async def test_only_admins_can_open_the_options(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_read_only_access_token: str,
) -> None:
    """Home Assistant's options flow views require an admin: the People page is admin-only."""
    assert await async_setup_component(hass, "config", {})
    url = "/api/config/config_entries/options/flow"
    user = await hass_client(hass_read_only_access_token)
    response = await user.post(url, json={"handler": loaded_entry.entry_id})
    assert response.status == 401
    admin = await hass_client()
    response = await admin.post(url, json={"handler": loaded_entry.entry_id})
    assert response.status == 200
    flow = await response.json()
    response = await user.post(f"{url}/{flow['flow_id']}", json={"next_step_id": "people"})
    assert response.status == 401  # nor step into an admin's flow


async def enroll_two(hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path) -> dict:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    return {p.name: p.person_id for p in entry.runtime_data.people.people.values()}


async def test_rename_keeps_the_faces_and_the_door(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    ids = await enroll_two(hass, loaded_entry, photo_dir)
    unlock = unlock_options(door_lock, people=[ids["Eileen"]], liveness=False)
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_UNLOCK: unlock}
    )
    await hass.async_block_till_done()
    result = await choose(hass, await people_page(hass, loaded_entry), "edit_person")
    for new_name, error in (("Tom", "person_exists"), ("tom", "name_collision")):
        result = await submit(hass, result, {"person": ids["Eileen"], "new_name": new_name})
        assert result["errors"] == {"new_name": error}
    result = await submit(hass, result, {"person": ids["Eileen"], "new_name": "Eileen Collins"})
    assert result["step_id"] == "people"
    assert table_rows(result)[0] == "| Eileen Collins | 1 | 0 | - |"

    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "unlocked"  # her right stayed with her id
    assert door_event(hass)["person"] == "Eileen Collins"
    assert hass.states.get("sensor.front_door_faces_last_person").state == "Eileen Collins"


async def test_nothing_changes_without_a_new_name_or_delete(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    ids = await enroll_two(hass, loaded_entry, photo_dir)
    result = await choose(hass, await people_page(hass, loaded_entry), "edit_person")
    result = await submit(hass, result, {"person": ids["Tom"]})
    assert result["step_id"] == "people"
    assert len(table_rows(result)) == 2


async def test_deleting_a_person_who_may_open_the_door(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    ids = await enroll_two(hass, loaded_entry, photo_dir)
    hass.states.async_set("device_tracker.eileen", "home")
    unlock = unlock_options(
        door_lock,
        people=[ids["Eileen"]],
        require_presence=True,
        presence={ids["Eileen"]: "device_tracker.eileen"},
    )
    hass.config_entries.async_update_entry(
        loaded_entry, options={**loaded_entry.options, CONF_UNLOCK: unlock}
    )
    await hass.async_block_till_done()
    await show(hass, photo_dir / "astronaut.jpg")
    await call(hass, "scan")  # she was seen

    result = await choose(hass, await people_page(hass, loaded_entry), "edit_person")
    result = await submit(hass, result, {"person": ids["Eileen"], "delete": True})
    assert result["step_id"] == "delete_authorized"  # says she loses the door
    placeholders = result["description_placeholders"]
    assert placeholders == {"person": "Eileen", "faces": "1", "negatives": "0"}
    result = await submit(hass, result, {"confirm": False})
    assert result["errors"] == {"confirm": "confirm_delete"}
    assert "Eileen" in loaded_entry.runtime_data.people.names().values()  # nothing lost

    result = await submit(hass, result, {"confirm": True})
    assert result["step_id"] == "people"
    assert table_rows(result) == ["| Tom | 1 | 0 | - |"]
    assert loaded_entry.options[CONF_UNLOCK][CONF_PEOPLE] == []
    assert loaded_entry.options[CONF_UNLOCK][CONF_PRESENCE] == {}
    assert loaded_entry.runtime_data.last_seen.get(ids["Eileen"]) is None
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "door_without_people")
    assert issue is not None  # the door has nobody left: the repair says so
    await hass.async_block_till_done()
    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "locked"


async def test_deleting_the_last_person(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    tom = loaded_entry.runtime_data.people.find("Tom").person_id
    result = await choose(hass, await people_page(hass, loaded_entry), "edit_person")
    result = await submit(hass, result, {"person": tom, "delete": True})
    assert result["step_id"] == "delete_person"  # not at the door
    result = await submit(hass, result, {"confirm": True})
    assert result["step_id"] == "people_empty"
    assert loaded_entry.runtime_data.people.people == {}
    assert ir.async_get(hass).async_get_issue(DOMAIN, "door_without_people") is None


async def test_a_person_deleted_while_the_question_is_open(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    tom = loaded_entry.runtime_data.people.find("Tom").person_id
    result = await choose(hass, await people_page(hass, loaded_entry), "edit_person")
    result = await submit(hass, result, {"person": tom, "delete": True})
    await call(hass, "delete_person", name="Tom")  # in another window
    result = await submit(hass, result, {"confirm": True})
    assert result["type"] == "abort"


async def test_the_door_page_leads_to_the_people_when_nobody_is_enrolled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    runtime = loaded_entry.runtime_data
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await choose(hass, result, "unlock")
    assert result["step_id"] == "unlock_nobody"
    result = await choose(hass, result, "people")
    assert result["step_id"] == "people_empty"
    result = await choose(hass, result, "done")
    await hass.async_block_till_done()
    assert result["type"] == "create_entry"
    assert loaded_entry.runtime_data is runtime  # nothing changed: not reloaded


async def test_a_camera_is_only_suggested_when_one_is_scanned(
    hass: HomeAssistant, entry: MockConfigEntry, camera_entity: str
) -> None:
    result = await choose(hass, await people_page(hass, entry), "add_person")
    key = next(k for k in result["data_schema"].schema if k == "camera")
    assert (key.description or {}).get("suggested_value") is None  # no camera is scanned


async def test_last_seen_survives_a_restart(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    hass_storage: dict[str, Any],
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await show(hass, photo_dir / "mirrored.jpg")
    await call(hass, "scan")
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))  # saved a minute on
    await hass.async_block_till_done()
    stored = hass_storage["compact_ai.last_seen"]["data"]
    assert len(stored) == 1
    stored["someone_else"] = "not a time"  # damaged: dropped, not an error
    before = table_rows(await people_page(hass, loaded_entry))
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert table_rows(await people_page(hass, loaded_entry)) == before
    assert " | - |" not in before[0]

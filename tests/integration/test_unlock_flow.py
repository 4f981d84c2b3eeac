"""Door-unlock page of the options flow: who may unlock which lock, and what is refused."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import (
    CONF_CAMERAS,
    CONF_ENABLED,
    CONF_FRAMES_REQUIRED,
    CONF_LIVENESS,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_PRESENCE,
    CONF_REQUIRE_PRESENCE,
    CONF_TIER,
    CONF_UNLOCK,
    CONF_UNLOCK_CAMERAS,
    DOMAIN,
)

from .common import UNLOCK_FORM, open_step


async def enroll(entry: MockConfigEntry, *names: str) -> None:
    """Store people (saving the options reloads the entry, which reads them back)."""
    people = entry.runtime_data.people
    for name in names:
        people.add_samples(name, [([0.0] * 128, "", [[0.0, 0.0]] * 4, None)])
    people.embedder = entry.runtime_data.faces.recognizer.embedder_id  # no re-embedding
    await people.async_save()


async def test_unlock_policy_saved(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str, door_lock: str
) -> None:
    await enroll(loaded_entry, "Alice", "Bob")
    result = await open_step(hass, loaded_entry, "unlock")
    assert result["step_id"] == "unlock"
    people = result["data_schema"].schema[CONF_PEOPLE].config["options"]
    assert [person["label"] for person in people] == ["Alice", "Bob"]
    alice = people[0]["value"]
    assert alice == loaded_entry.runtime_data.people.find("Alice").person_id

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **UNLOCK_FORM,
            CONF_ENABLED: True,
            CONF_LOCK: door_lock,
            CONF_UNLOCK_CAMERAS: [camera_entity],
            CONF_PEOPLE: [alice],
            CONF_FRAMES_REQUIRED: 3.0,
        },
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    unlock = loaded_entry.options[CONF_UNLOCK]
    assert unlock[CONF_LOCK] == door_lock
    assert unlock[CONF_PEOPLE] == [alice]  # by person id: a new "Alice" is not authorized
    assert unlock[CONF_FRAMES_REQUIRED] == 3 and isinstance(unlock[CONF_FRAMES_REQUIRED], int)
    assert loaded_entry.options[CONF_TIER] == "balanced"


async def test_one_frame_with_liveness_is_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str, door_lock: str
) -> None:
    """Liveness compares two frames; with one it could only compare a frame with itself."""
    await enroll(loaded_entry, "Alice")
    alice = loaded_entry.runtime_data.people.find("Alice").person_id
    result = await open_step(hass, loaded_entry, "unlock")
    form = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [camera_entity],
        CONF_PEOPLE: [alice],
        CONF_FRAMES_REQUIRED: 1,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["errors"] == {CONF_FRAMES_REQUIRED: "liveness_needs_two_frames"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**form, CONF_LIVENESS: False}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_UNLOCK][CONF_FRAMES_REQUIRED] == 1


async def test_unlock_policy_errors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str
) -> None:
    await enroll(loaded_entry, "Alice")
    result = await open_step(hass, loaded_entry, "unlock")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**UNLOCK_FORM, CONF_ENABLED: True, CONF_FRAMES_REQUIRED: 4}
    )
    assert result["errors"] == {
        CONF_FRAMES_REQUIRED: "frames_required_too_high",
        CONF_LOCK: "lock_required",
        CONF_UNLOCK_CAMERAS: "cameras_required",
        CONF_PEOPLE: "people_required",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **UNLOCK_FORM,
            CONF_ENABLED: True,
            CONF_LOCK: "lock.gone",
            CONF_UNLOCK_CAMERAS: [camera_entity],
            CONF_PEOPLE: [loaded_entry.runtime_data.people.find("Alice").person_id],
        },
    )
    assert result["errors"] == {CONF_LOCK: "entity_not_found"}
    assert CONF_UNLOCK not in loaded_entry.options


async def test_unlock_policy_disabled_needs_nothing(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await open_step(hass, loaded_entry, "unlock")
    assert result["type"] is FlowResultType.MENU  # nobody enrolled: the way to People first
    assert result["step_id"] == "unlock_nobody"
    assert result["menu_options"] == ["people", "unlock"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "unlock"}
    )
    assert result["data_schema"].schema[CONF_PEOPLE].config["options"] == []
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**UNLOCK_FORM, CONF_ENABLED: False}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_UNLOCK][CONF_ENABLED] is False


async def test_unlock_policy_with_presence(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str, door_lock: str
) -> None:
    await enroll(loaded_entry, "Alice")
    alice = loaded_entry.runtime_data.people.find("Alice").person_id
    hass.states.async_set("device_tracker.alice_phone", "home")
    result = await open_step(hass, loaded_entry, "unlock")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **UNLOCK_FORM,
            CONF_ENABLED: True,
            CONF_LOCK: door_lock,
            CONF_UNLOCK_CAMERAS: [camera_entity],
            CONF_PEOPLE: [alice],
            CONF_REQUIRE_PRESENCE: True,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "presence"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"Alice": "device_tracker.gone"}
    )
    assert result["errors"] == {"Alice": "entity_not_found"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"Alice": "device_tracker.alice_phone"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The form asks by name; the options keep the person id.
    assert loaded_entry.options[CONF_UNLOCK][CONF_PRESENCE] == {alice: "device_tracker.alice_phone"}


async def test_unlock_step_when_entry_not_loaded(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced", CONF_CAMERAS: []})
    entry.add_to_hass(hass)
    result = await open_step(hass, entry, "unlock")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "unlock"}
    )
    assert result["data_schema"].schema[CONF_PEOPLE].config["options"] == []

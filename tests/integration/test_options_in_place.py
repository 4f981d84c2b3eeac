"""Saving options changes the running entry without a reload where it can (reconfigure.py).

A reload makes every entity unavailable for a moment (a logbook line each) and forgets what
the last scan saw. Triggers, interval and the door settings are applied in place; only a new
tier, backend or camera list reloads, and then the scan sensors come back with their value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_COOLDOWN,
    CONF_ENABLED,
    CONF_LIVENESS,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_SCAN_INTERVAL,
    CONF_TIER,
    CONF_TRIGGERS,
    CONF_UNLOCK_CAMERAS,
    DOMAIN,
    SECTION_ADVANCED,
)
from custom_components.compact_ai.engine.runtime.availability import BackendUnavailableError
from custom_components.compact_ai.reconfigure import DECIDERS

from .common import ADVANCED, CAMERA, UNLOCK_FORM, call, open_step
from .test_door import DOOR_EVENT, door_event, scan

LAST_PERSON = "sensor.front_door_faces_last_person"
INFERENCE_TIME = "sensor.front_door_faces_inference_time"


def watch(hass: HomeAssistant) -> list[Event]:
    """Record every state change of a Compact AI entity from now on."""
    changes: list[Event] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: changes.append(event) if "compact_ai" in str(event.data) else None,
    )
    return changes


def gone_or_unavailable(changes: list[Event], ours: set[str]) -> list[str]:
    """Return the entities of ours that went unavailable or lost their state."""
    return [
        event.data["entity_id"]
        for event in changes
        if event.data["entity_id"] in ours
        and (event.data["new_state"] is None or event.data["new_state"].state == STATE_UNAVAILABLE)
    ]


def our_entities(hass: HomeAssistant, entry: MockConfigEntry) -> set[str]:
    return {
        e.entity_id for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    }


async def seen_by_camera(hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path) -> None:
    """Enroll Eileen and let the camera see her, so the scan sensors have a value."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await scan(hass, photo_dir / "astronaut.jpg")
    assert hass.states.get(LAST_PERSON).state == "Eileen"


async def save(
    hass: HomeAssistant, entry: MockConfigEntry, step: str, form: dict[str, Any]
) -> None:
    result = await open_step(hass, entry, step)
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    await hass.async_block_till_done()
    assert result["type"] == "create_entry", result.get("errors")


async def test_scan_settings_and_the_door_change_without_a_reload(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    door_lock: str,
    photo_dir: Path,
) -> None:
    await seen_by_camera(hass, loaded_entry, photo_dir)
    runtime = loaded_entry.runtime_data
    before = {entity: hass.states.get(entity).state for entity in (LAST_PERSON, INFERENCE_TIME)}
    ours = our_entities(hass, loaded_entry)
    changes = watch(hass)
    hass.states.async_set("binary_sensor.doorbell", "off")

    await save(
        hass,
        loaded_entry,
        "settings",
        {
            CONF_TIER: "balanced",
            CONF_CAMERAS: [CAMERA],
            CONF_TRIGGERS: ["binary_sensor.doorbell"],
            CONF_SCAN_INTERVAL: 30,
            **ADVANCED,
        },
    )
    assert loaded_entry.runtime_data is runtime  # not reloaded
    assert {entity: hass.states.get(entity).state for entity in before} == before
    report = runtime.faces.last_report(CAMERA)
    hass.states.async_set("binary_sensor.doorbell", "on")  # the new trigger works at once
    await hass.async_block_till_done(wait_background_tasks=True)
    assert runtime.faces.last_report(CAMERA) is not report

    eileen = runtime.people.find("Eileen").person_id
    door = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [CAMERA],
        CONF_PEOPLE: [eileen],
    }
    await save(hass, loaded_entry, "unlock", door)  # the door goes on: its entity is added
    assert hass.states.get(DOOR_EVENT) is not None
    controller = runtime.door
    assert controller is not None
    await save(hass, loaded_entry, "unlock", {**door, CONF_COOLDOWN: 60})
    assert runtime.door is controller and controller.policy.cooldown_s == 60
    await save(hass, loaded_entry, "unlock", {**door, CONF_ENABLED: False})
    assert runtime.door is None
    assert hass.states.get(DOOR_EVENT) is None  # removed, not left unavailable

    assert loaded_entry.runtime_data is runtime
    assert hass.states.get(LAST_PERSON).state == "Eileen"
    assert gone_or_unavailable(changes, ours) == []


async def test_a_new_tier_reloads_and_the_scan_sensors_keep_their_value(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    await seen_by_camera(hass, loaded_entry, photo_dir)
    before = {entity: hass.states.get(entity).state for entity in (LAST_PERSON, INFERENCE_TIME)}
    runtime = loaded_entry.runtime_data
    await save(
        hass,
        loaded_entry,
        "settings",
        {CONF_TIER: "fast", CONF_CAMERAS: [CAMERA], **ADVANCED},
    )
    assert loaded_entry.runtime_data is not runtime  # other models: reloaded
    assert loaded_entry.runtime_data.tier == "fast"
    assert {entity: hass.states.get(entity).state for entity in before} == before


async def test_saving_the_door_settings_keeps_the_cooldown(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    """Trying to get in again right after an unlock, by way of an options save: still denied."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    eileen = loaded_entry.runtime_data.people.find("Eileen").person_id
    door = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [CAMERA],
        CONF_PEOPLE: [eileen],
        CONF_LIVENESS: False,  # 6 keypoints at this size cannot show a head turn (test_door.py)
    }
    await save(hass, loaded_entry, "unlock", door)
    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "unlocked"
    await hass.services.async_call("lock", "lock", {"entity_id": door_lock}, blocking=True)

    await save(hass, loaded_entry, "unlock", {**door, CONF_COOLDOWN: 20})
    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "cooldown"


async def test_saving_the_door_settings_keeps_the_back_off(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    eileen = loaded_entry.runtime_data.people.find("Eileen").person_id
    door = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [CAMERA],
        CONF_PEOPLE: [eileen],
    }
    await save(hass, loaded_entry, "unlock", door)
    for _ in range(3):  # a stranger, three times in a minute: backed off
        await scan(hass, photo_dir / "hanks.jpg")
    await save(hass, loaded_entry, "unlock", {**door, CONF_COOLDOWN: 20})
    await scan(hass, photo_dir / "hanks.jpg")
    assert door_event(hass)["reason"] == "backoff"


async def test_neither_turning_the_door_off_and_on_nor_a_reload_ends_a_back_off(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    """A stranger backed off cannot get a fresh count from the door's owner changing settings."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    eileen = loaded_entry.runtime_data.people.find("Eileen").person_id
    door = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [CAMERA],
        CONF_PEOPLE: [eileen],
    }
    await save(hass, loaded_entry, "unlock", door)
    for _ in range(3):  # a stranger, three times in a minute: backed off
        await scan(hass, photo_dir / "hanks.jpg")
    await save(hass, loaded_entry, "unlock", {**door, CONF_ENABLED: False})
    await save(hass, loaded_entry, "unlock", door)
    await scan(hass, photo_dir / "hanks.jpg")
    assert door_event(hass)["reason"] == "backoff"
    runtime = loaded_entry.runtime_data
    await save(
        hass, loaded_entry, "settings", {CONF_TIER: "fast", CONF_CAMERAS: [CAMERA], **ADVANCED}
    )
    assert loaded_entry.runtime_data is not runtime  # reloaded: a new door controller
    await scan(hass, photo_dir / "hanks.jpg")
    assert door_event(hass)["reason"] == "backoff"
    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    assert hass.data[DECIDERS] == {}  # a removed entry leaves nothing behind


async def test_a_person_taken_off_the_door_cannot_get_in_without_a_reload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, door_lock: str, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    people = loaded_entry.runtime_data.people
    door = {
        **UNLOCK_FORM,
        CONF_ENABLED: True,
        CONF_LOCK: door_lock,
        CONF_UNLOCK_CAMERAS: [CAMERA],
        CONF_PEOPLE: [people.find("Eileen").person_id],
        CONF_LIVENESS: False,
    }
    await save(hass, loaded_entry, "unlock", door)
    runtime = loaded_entry.runtime_data
    await save(hass, loaded_entry, "unlock", {**door, CONF_PEOPLE: [people.find("Tom").person_id]})
    assert loaded_entry.runtime_data is runtime
    await scan(hass, photo_dir / "astronaut.jpg")
    await scan(hass, photo_dir / "turned.jpg")
    assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "not_authorized"


async def test_options_saved_for_an_entry_that_failed_to_start_start_it(
    hass: HomeAssistant,
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced", CONF_BACKEND: "ncnn"})
    entry.add_to_hass(hass)
    with patch(  # inject a backend that cannot be loaded
        "custom_components.compact_ai.resolve_backend",
        side_effect=BackendUnavailableError("ncnn"),
    ):
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    result = await open_step(hass, entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_TIER: "balanced", CONF_CAMERAS: [], SECTION_ADVANCED: {CONF_BACKEND: "auto"}},
    )
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

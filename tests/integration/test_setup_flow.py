"""A new setup scans by itself: the cameras' own sensors start scans, or an interval does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.compact_ai.const import (
    CONF_CAMERAS,
    CONF_SCAN_INTERVAL,
    CONF_TIER,
    CONF_TRIGGERS,
    DOMAIN,
)
from custom_components.compact_ai.face.manager import ScanReport
from custom_components.compact_ai.scanning import DEFAULT_INTERVAL, TRIGGER_SCANS

from .common import CAMERA
from .people_flow import checked


def camera_device_with_sensors(hass: HomeAssistant) -> dict[str, str]:
    """Give the camera a device holding a motion sensor, a doorbell and a door contact.

    As a camera integration (Reolink, UniFi Protect, ...) registers them; local_file has no
    device of its own.
    """
    camera_entry = hass.config_entries.async_entries("local_file")[0]
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=camera_entry.entry_id, identifiers={("local_file", "front")}
    )
    entities = er.async_get(hass)
    entities.async_update_entity(CAMERA, device_id=device.id)
    made = {}
    for domain, key, device_class, state in (
        ("binary_sensor", "motion", "motion", "off"),
        ("event", "doorbell", "doorbell", "unknown"),
        ("binary_sensor", "door", "door", "off"),  # a door contact: not someone at the camera
    ):
        entity = entities.async_get_or_create(
            domain,
            "camera_maker",
            key,
            device_id=device.id,
            original_device_class=device_class,
            suggested_object_id=f"front_door_{key}",
        )
        hass.states.async_set(entity.entity_id, state)
        made[key] = entity.entity_id
    return made


async def start(hass: HomeAssistant) -> dict:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return checked(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: [CAMERA]}
        ),
        "config",
    )


def suggested(result: dict, field: str) -> object:
    key = next(key for key in result["data_schema"].schema if key == field)
    return key.description["suggested_value"]


async def test_the_cameras_own_sensors_are_preselected(
    hass: HomeAssistant, camera_entity: str
) -> None:
    sensors = camera_device_with_sensors(hass)
    result = await start(hass)
    assert result["type"] is FlowResultType.FORM and result["step_id"] == "scan"
    assert suggested(result, CONF_TRIGGERS) == [sensors["motion"], sensors["doorbell"]]
    assert result["description_placeholders"] == {
        "cameras": "Front door",
        "scans": str(TRIGGER_SCANS),
        "seconds": "4",
        "interval": str(DEFAULT_INTERVAL),
    }

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TRIGGERS: [sensors["motion"], sensors["doorbell"]]}
    )
    await hass.async_block_till_done()
    assert checked(result, "config")["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"][CONF_TRIGGERS] == [sensors["motion"], sensors["doorbell"]]
    assert result["options"][CONF_SCAN_INTERVAL] == 0  # triggers: no interval
    assert result["description"] == "scan_on_trigger"
    names = result["description_placeholders"]["triggers"]
    assert names == "front door motion, front door doorbell"  # their friendly names


async def test_without_a_trigger_the_cameras_are_scanned_while_on(
    hass: HomeAssistant, camera_entity: str
) -> None:
    result = await start(hass)
    assert suggested(result, CONF_TRIGGERS) == []  # local_file has no device, so no sensors
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert checked(result, "config")["options"][CONF_SCAN_INTERVAL] == DEFAULT_INTERVAL
    assert result["description"] == "scan_every"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    reports = listen(entry)

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=DEFAULT_INTERVAL + 0.1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(reports) == 1 and reports[0].scan is not None  # no one pressed anything

    hass.states.async_set(CAMERA, "unavailable")  # the camera is off: no snapshot is asked for
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=2 * DEFAULT_INTERVAL + 1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(reports) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_trigger_that_does_not_exist_is_refused(
    hass: HomeAssistant, camera_entity: str
) -> None:
    result = await start(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TRIGGERS: ["binary_sensor.gone"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TRIGGERS: "entity_not_found"}
    assert suggested(result, CONF_TRIGGERS) == ["binary_sensor.gone"]  # kept as typed


def listen(entry: MockConfigEntry) -> list[ScanReport]:
    reports: list[ScanReport] = []
    entry.async_on_unload(entry.runtime_data.faces.async_add_listener(reports.append))
    return reports


async def test_a_doorbell_starts_a_burst_of_scans(
    hass: HomeAssistant, camera_entity: str, photo_dir: Path
) -> None:
    sensors = camera_device_with_sensors(hass)
    doorbell = sensors["doorbell"]
    entry = MockConfigEntry(
        domain=DOMAIN,
        options={CONF_TIER: "balanced", CONF_CAMERAS: [CAMERA], CONF_TRIGGERS: [doorbell]},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    reports = listen(entry)

    hass.states.async_set(doorbell, "2026-01-01T10:00:00.000+00:00")  # pressed
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(reports) == 1
    for second in range(1, TRIGGER_SCANS + 2):  # one scan a second, then no more
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=second))
        await hass.async_block_till_done(wait_background_tasks=True)
    assert len(reports) == TRIGGER_SCANS

    hass.states.async_set(doorbell, "unavailable")  # a reload of the doorbell's integration
    hass.states.async_set(doorbell, "2026-01-01T10:00:00.000+00:00")  # restored, not pressed
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(reports) == TRIGGER_SCANS
    assert await hass.config_entries.async_unload(entry.entry_id)

"""Setting up, unloading and diagnosing the Compact AI entry in a real Home Assistant."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_TIER,
    CONF_UNLOCK,
    DOMAIN,
)
from custom_components.compact_ai.engine.runtime.availability import available_backends

from .common import call, set_up_entry

# How Home Assistant words a deprecation in its log (helpers.frame.report_usage and
# helpers.deprecation): "... which is deprecated ...", "This will stop working in ...".
DEPRECATION = re.compile(r"deprecat|will stop working|stops working|breaks in", re.IGNORECASE)


async def test_setup_and_unload(hass: HomeAssistant, camera_entity: str) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "accurate", CONF_CAMERAS: [camera_entity]})
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.backend == available_backends()[0]

    backend = hass.states.get("sensor.compact_ai_inference_backend")
    assert backend is not None and backend.state == available_backends()[0]
    assert hass.states.get("sensor.compact_ai_model_tier").state == "accurate"
    registry = er.async_get(hass)
    assert registry.async_get("sensor.compact_ai_inference_backend").entity_category == "diagnostic"
    # Looked up among the entry's devices: async_get_device(identifiers=...) is deprecated
    # (2026.10) and async_get_device_by_identifier does not exist in 2026.2.
    devices = {
        identifier: device
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
        for identifier in device.identifiers
    }
    service = devices[(DOMAIN, entry.entry_id)]
    assert service.entry_type is dr.DeviceEntryType.SERVICE
    camera = devices[(DOMAIN, f"{entry.entry_id}_{camera_entity}")]
    assert camera.via_device_id == service.id

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get("sensor.compact_ai_inference_backend").state == "unavailable"


async def test_a_camera_taken_out_of_the_options_leaves_no_device(
    hass: HomeAssistant, camera_entity: str
) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]})
    devices, entities = dr.async_get(hass), er.async_get(hass)

    def identifiers() -> set[tuple[str, str]]:
        entries = dr.async_entries_for_config_entry(devices, entry.entry_id)
        return {identifier for device in entries for identifier in device.identifiers}

    camera = (DOMAIN, f"{entry.entry_id}_{camera_entity}")
    assert identifiers() == {(DOMAIN, entry.entry_id), camera}
    assert entities.async_get("sensor.front_door_faces_last_person") is not None

    hass.config_entries.async_update_entry(entry, options={CONF_TIER: "balanced"})
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert identifiers() == {(DOMAIN, entry.entry_id)}  # the service device stays
    assert entities.async_get("sensor.front_door_faces_last_person") is None
    assert hass.states.get("sensor.compact_ai_model_tier").state == "balanced"


async def test_setup_fails_cleanly_when_backend_missing(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "fast", CONF_BACKEND: "onnxruntime"})
    entry.add_to_hass(hass)
    with patch(
        "custom_components.compact_ai.engine.runtime.availability.backend_importable",
        return_value=False,
    ):
        assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "onnxruntime" in (entry.reason or "")


async def test_diagnostics_redacts_people_and_devices(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
) -> None:
    unlock = {"enabled": True, "lock": door_lock, "unlock_cameras": [camera_entity]}
    unlock |= {"people": ["Eileen"]}
    entry = MockConfigEntry(
        domain=DOMAIN,
        options={CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity], CONF_UNLOCK: unlock},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["options"][CONF_CAMERAS] == "**REDACTED**"
    assert diagnostics["options"][CONF_UNLOCK]["people"] == "**REDACTED**"
    assert diagnostics["options"][CONF_UNLOCK]["lock"] == "**REDACTED**"
    assert diagnostics["camera_count"] == 1
    assert diagnostics["people_count"] == 1 and diagnostics["sample_count"] == 1
    assert diagnostics["backend"] == entry.runtime_data.backend
    assert diagnostics["models_loaded"] is True and diagnostics["unlock_enabled"] is True
    text = str(diagnostics)
    assert camera_entity not in text and "Eileen" not in text and door_lock not in text
    eileen = entry.runtime_data.people.find("Eileen")
    assert eileen is not None
    embedding = eileen.samples[0].embedding
    assert str(round(embedding[0], 6))[:6] not in text


async def test_no_deprecation_warnings_name_compact_ai(
    hass: HomeAssistant, camera_entity: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Set up, change the settings (the entry reloads) and unload: nothing deprecated is used.

    Reads every log line (and Python warning) of those steps; none that speaks of a
    deprecation may name compact_ai. Run on both Home Assistant releases CI tests.
    """
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = await set_up_entry(hass, {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]})
        flow = await hass.config_entries.options.async_init(entry.entry_id)
        flow = await hass.config_entries.options.async_configure(
            flow["flow_id"], {"next_step_id": "settings"}
        )
        flow = await hass.config_entries.options.async_configure(
            flow["flow_id"],
            {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity], "advanced": {"backend": "auto"}},
        )
        await hass.async_block_till_done()
        assert entry.runtime_data.tier == "balanced"
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    assert caplog.records  # the log was captured
    # A device linked to one not registered yet (report_usage names `via_device`).
    assert [r.getMessage() for r in caplog.records if "via_device" in r.getMessage()] == []
    lines = [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if DEPRECATION.search(record.getMessage())
        and "compact_ai" in f"{record.name} {record.getMessage()}"
    ]
    lines += [
        f"{warning.filename}:{warning.lineno}: {warning.message}"
        for warning in caught
        if issubclass(warning.category, DeprecationWarning)
        and "compact_ai" in f"{warning.filename} {warning.message}"
    ]
    assert lines == []

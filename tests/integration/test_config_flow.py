"""Config and options flow of Compact AI."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_BACKEND, CONF_CAMERAS, CONF_TIER, DOMAIN


async def test_user_step_creates_entry(hass: HomeAssistant, camera_entity: str) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    assert CONF_BACKEND not in result["data_schema"].schema

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Compact AI"
    assert result["data"] == {}
    assert result["options"] == {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.runtime_data.tier == "fast"


async def test_user_step_defaults_to_balanced(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"] == {CONF_TIER: "balanced", CONF_CAMERAS: []}


async def test_user_step_unknown_camera_then_recovers(
    hass: HomeAssistant, camera_entity: str
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TIER: "accurate", CONF_CAMERAS: ["camera.gone"]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CAMERAS: "camera_not_found"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TIER: "accurate", CONF_CAMERAS: [camera_entity]}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_single_entry_only(hass: HomeAssistant) -> None:
    MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced"}).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, camera_entity: str) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, options={CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_options_flow_changes_tier_and_reloads(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert CONF_BACKEND not in result["data_schema"].schema

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_TIER] == "fast"
    assert loaded_entry.runtime_data.tier == "fast"
    assert hass.states.get("sensor.compact_ai_model_tier").state == "fast"


async def test_options_flow_removed_camera_shows_error(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str
) -> None:
    camera_entry = hass.config_entries.async_entries("local_file")[0]
    assert await hass.config_entries.async_remove(camera_entry.entry_id)
    await hass.async_block_till_done()

    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CAMERAS: "camera_not_found"}
    assert loaded_entry.options[CONF_CAMERAS] == [camera_entity]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: []}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_CAMERAS] == []


async def test_options_flow_advanced_backend(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(
        loaded_entry.entry_id, context={"show_advanced_options": True}
    )
    assert CONF_BACKEND in result["data_schema"].schema

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: [], CONF_BACKEND: "ncnn"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.runtime_data.backend == "ncnn"
    assert hass.states.get("sensor.compact_ai_inference_backend").state == "ncnn"


async def test_options_flow_rejects_missing_backend(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await hass.config_entries.options.async_init(
        loaded_entry.entry_id, context={"show_advanced_options": True}
    )
    # Simulate an install (HA OS, musl) where onnxruntime has no wheel.
    with patch(
        "custom_components.compact_ai.config_flow.backend_importable",
        side_effect=lambda name: name != "onnxruntime",
    ):
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {CONF_TIER: "balanced", CONF_CAMERAS: [], CONF_BACKEND: "onnxruntime"},
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_BACKEND: "backend_unavailable"}

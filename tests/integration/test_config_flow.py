"""Config and options flow of Compact AI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, section
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_SCAN_INTERVAL,
    CONF_TIER,
    CONF_TRIGGERS,
    DOMAIN,
    SECTION_ADVANCED,
    TIERS,
)

from .common import ADVANCED, call, open_step


# What the frontend sends for the collapsed advanced section when it is left alone.
async def test_user_step_creates_entry(hass: HomeAssistant, camera_entity: str) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    assert CONF_BACKEND not in result["data_schema"].schema

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity]}
    )
    assert result["step_id"] == "scan"  # what starts a scan (test_setup_flow.py)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Compact AI"
    assert result["data"] == {}
    assert result["options"] == {
        CONF_TIER: "fast",
        CONF_CAMERAS: [camera_entity],
        CONF_TRIGGERS: [],
        CONF_SCAN_INTERVAL: 4,
    }
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
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_single_entry_only(hass: HomeAssistant) -> None:
    MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced"}).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "single_instance_allowed"


async def test_options_flow_changes_tier_and_reloads(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, camera_entity: str
) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["settings", "people", "unlock", "voice", "benchmark"]
    result = await open_step(hass, loaded_entry, "settings")
    assert result["type"] is FlowResultType.FORM
    # The backend is in a collapsed section, not among the top-level fields.
    assert CONF_BACKEND not in result["data_schema"].schema
    advanced = result["data_schema"].schema[SECTION_ADVANCED]
    assert isinstance(advanced, section)
    assert advanced.options["collapsed"] is True

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "fast", CONF_CAMERAS: [camera_entity], **ADVANCED}
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

    result = await open_step(hass, loaded_entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity], **ADVANCED}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_CAMERAS: "camera_not_found"}
    assert loaded_entry.options[CONF_CAMERAS] == [camera_entity]

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "balanced", CONF_CAMERAS: [], **ADVANCED}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_CAMERAS] == []


async def test_options_flow_advanced_backend(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await open_step(hass, loaded_entry, "settings")
    assert CONF_BACKEND in result["data_schema"].schema[SECTION_ADVANCED].schema.schema

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_TIER: "balanced", CONF_CAMERAS: [], SECTION_ADVANCED: {CONF_BACKEND: "ncnn"}},
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # Stored as before: the backend at the top level of the options, no section in them.
    assert loaded_entry.options[CONF_BACKEND] == "ncnn"
    assert SECTION_ADVANCED not in loaded_entry.options
    assert loaded_entry.runtime_data.backend == "ncnn"
    assert hass.states.get("sensor.compact_ai_inference_backend").state == "ncnn"


async def test_options_flow_rejects_missing_backend(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await open_step(hass, loaded_entry, "settings")
    # Simulate an install (HA OS, musl) where onnxruntime has no wheel.
    with patch(
        "custom_components.compact_ai.config_flow.backend_importable",
        side_effect=lambda name: name != "onnxruntime",
    ):
        result = await hass.config_entries.options.async_configure(
            result["flow_id"],
            {
                CONF_TIER: "balanced",
                CONF_CAMERAS: [],
                SECTION_ADVANCED: {CONF_BACKEND: "onnxruntime"},
            },
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "backend_unavailable"}


async def test_settings_unknown_trigger(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await open_step(hass, loaded_entry, "settings")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_TIER: "balanced",
            CONF_TRIGGERS: ["binary_sensor.doorbell"],
            CONF_SCAN_INTERVAL: 0,
            **ADVANCED,
        },
    )
    assert result["errors"] == {CONF_TRIGGERS: "entity_not_found"}


async def test_user_step_describes_the_tiers(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    placeholders = result["description_placeholders"]
    # The shipped pack: the tiers share their files but give YuNet 960x540, 640x360 and
    # 544x306 pixels of a 1080p frame, so they are three sets that find faces this far away.
    assert [placeholders[f"{tier}_set"] for tier in TIERS] == ["1", "2", "3"]
    assert [placeholders[f"{tier}_reach"] for tier in TIERS] == ["3.6", "2.4", "2.0"]


async def test_tier_table_shows_the_door_tar_the_manifest_has(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """The owner's share of frames recognized at the door, where the manifest measured it."""
    from custom_components.compact_ai.const import PACK_DIR

    pack = tmp_path / "pack"
    shutil.copytree(PACK_DIR, pack, symlinks=True)
    manifest = json.loads((pack / "manifest.json").read_text())
    for tier in TIERS:  # measured on accurate only
        metrics = manifest["tiers"][tier]["models"]["face_embedder"]["metrics"]
        for key in [key for key in metrics if key.startswith("door_tar")]:
            del metrics[key]
    manifest["tiers"]["accurate"]["models"]["face_embedder"]["metrics"]["door_tar"] = 0.934
    (pack / "manifest.json").write_text(json.dumps(manifest))
    with patch("custom_components.compact_ai.const.PACK_DIR", pack):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    placeholders = result["description_placeholders"]
    assert [placeholders[f"{tier}_door"] for tier in TIERS] == ["93", "–", "–"]
    assert all(placeholders[f"{tier}_accuracy"] != "–" for tier in TIERS)


async def test_tier_table_without_a_pack(hass: HomeAssistant, tmp_path: Path) -> None:
    with patch("custom_components.compact_ai.const.PACK_DIR", tmp_path):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert set(result["description_placeholders"].values()) == {"–"}


async def test_benchmark_times_every_tier_then_sets_the_tier(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    result = await open_step(hass, loaded_entry, "benchmark")
    assert result["step_id"] == "benchmark"
    placeholders = result["description_placeholders"]
    # The astronaut, found by every tier, each timed.
    assert [placeholders[f"{tier}_faces"] for tier in TIERS] == ["1", "1", "1"]
    assert all(float(placeholders[f"{tier}_frame_ms"]) > 0 for tier in TIERS)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_TIER: "fast"}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert loaded_entry.options[CONF_TIER] == "fast"
    assert loaded_entry.options[CONF_CAMERAS]  # the rest is kept


async def test_benchmark_checks_each_tier_on_the_household(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    her = [str(photo_dir / "astronaut.jpg"), str(photo_dir / "mirrored.jpg")]
    assert (await call(hass, "enroll_face", name="Eileen", files=her))["enrolled"] == 2
    assert (await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")]))[
        "enrolled"
    ] == 1
    result = await open_step(hass, loaded_entry, "benchmark")
    placeholders = result["description_placeholders"]
    for tier in TIERS:  # Tom has one face: only hers are checked, each against the other
        assert placeholders[f"{tier}_household"] == "2 / 2"
        assert float(placeholders[f"{tier}_nearest"]) > 1  # Tom is outside the door distance


async def test_benchmark_without_cameras_or_loaded_entry(
    hass: HomeAssistant, camera_entity: str
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, options={CONF_TIER: "balanced", CONF_CAMERAS: ["camera.gone"]}
    )
    entry.add_to_hass(hass)
    result = await open_step(hass, entry, "benchmark")
    assert result["step_id"] == "benchmark_no_camera"  # says that a grey frame was timed
    placeholders = result["description_placeholders"]
    assert [placeholders[f"{tier}_faces"] for tier in TIERS] == ["0", "0", "0"]
    # Not loaded: no enrolled faces to check.
    assert {placeholders[f"{tier}_household"] for tier in TIERS} == {"–"}

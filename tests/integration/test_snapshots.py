"""Snapshots of what the integration registers and reports, on the shipped models.

Entity registry entries and states per platform (as Home Assistant core tests its own
integrations; see :func:`.common.snapshot_entities`), and the diagnostics. The entry watches
a real camera, may unlock a real template lock and has one enrolled person. It uses ncnn, the
backend every installation has, so both test passes (with and without onnxruntime) and both
Home Assistant releases give the same snapshots. Update them with ``pytest --snapshot-update``
after an intended change.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_ENABLED,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_TIER,
    CONF_UNLOCK,
    CONF_UNLOCK_CAMERAS,
)
from custom_components.compact_ai.engine.runtime.availability import available_backends

from .common import call, set_up_entry, snapshot_entities

ENTRY_ID = "01JCOMPACTAISNAPSHOT000000"  # unique ids start with it


async def set_up(hass: HomeAssistant, camera: str, lock: str, photos: Path) -> MockConfigEntry:
    unlock = {CONF_ENABLED: True, CONF_LOCK: lock, CONF_UNLOCK_CAMERAS: [camera]}
    options = {
        CONF_TIER: "balanced",
        CONF_BACKEND: "ncnn",
        CONF_CAMERAS: [camera],
        CONF_UNLOCK: unlock | {CONF_PEOPLE: ["Eileen"]},
    }
    entry = await set_up_entry(hass, options, entry_id=ENTRY_ID)
    await call(hass, "enroll_face", name="Eileen", files=[str(photos / "astronaut.jpg")])
    return entry


@pytest.mark.parametrize(
    "platform", [Platform.EVENT, Platform.SENSOR, Platform.STT, Platform.WAKE_WORD]
)
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    platform: Platform,
) -> None:
    with patch("custom_components.compact_ai.PLATFORMS", [platform]):
        entry = await set_up(hass, camera_entity, door_lock, photo_dir)
    await snapshot_entities(hass, entity_registry, snapshot, entry.entry_id)


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
) -> None:
    entry = await set_up(hass, camera_entity, door_lock, photo_dir)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    # Which backends can load depends on the installation (the HA OS pass has no onnxruntime).
    assert diagnostics["available_backends"] == list(available_backends())
    assert diagnostics == snapshot(exclude=props("available_backends"))

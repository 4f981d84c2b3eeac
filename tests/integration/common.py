"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import DOMAIN

CAMERA = "camera.front_door"


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def set_up_entry(hass: HomeAssistant, options: dict[str, Any]) -> MockConfigEntry:
    """Add a Compact AI entry with ``options`` and set it up; it must load."""
    entry = MockConfigEntry(domain=DOMAIN, options=options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def show(hass: HomeAssistant, photo: Path) -> None:
    """Point the local_file camera at another photo."""
    await hass.services.async_call(
        "local_file",
        "update_file_path",
        {"entity_id": CAMERA, "file_path": str(photo)},
        blocking=True,
    )

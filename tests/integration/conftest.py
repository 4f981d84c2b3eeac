"""Fixtures for Home Assistant tests: real photos behind a real local_file camera."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tools.compact.sources import source_path


@pytest.fixture(scope="session")
def astronaut_photo() -> Path:
    """Return a real photo with one face (scikit-image's astronaut, public domain)."""
    return source_path("astronaut.png")


@pytest.fixture
async def camera_entity(hass: HomeAssistant, astronaut_photo: Path) -> str:
    """Set up a local_file camera showing the astronaut and return its entity id."""
    entry = MockConfigEntry(
        domain="local_file",
        title="Front door",
        options={"name": "Front door", "file_path": str(astronaut_photo)},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("camera.front_door") is not None
    return "camera.front_door"


@pytest.fixture
async def door_lock(hass: HomeAssistant) -> str:
    """Set up a template lock backed by an input_boolean and return its entity id."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"front_door_locked": {"initial": True}}}
    )
    boolean = {"entity_id": "input_boolean.front_door_locked"}
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "lock": [
                        {
                            "name": "Front door",
                            "state": "{{ is_state('input_boolean.front_door_locked', 'on') }}",
                            "lock": [{"action": "input_boolean.turn_on", "target": boolean}],
                            "unlock": [{"action": "input_boolean.turn_off", "target": boolean}],
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get("lock.front_door").state == "locked"
    return "lock.front_door"

"""Which entities start a scan: the selector, and the ones found on the cameras' devices."""

from __future__ import annotations

from typing import Final

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.selector import EntitySelector, EntitySelectorConfig

# A camera's own sensors that mean "someone may be at the camera". A doorbell is an event
# entity (device class doorbell) in today's integrations; binary sensors have no doorbell class.
TRIGGER_CLASSES: Final[dict[str, frozenset[str]]] = {
    Platform.BINARY_SENSOR: frozenset({"motion", "occupancy", "presence"}),
    Platform.EVENT: frozenset({"doorbell"}),
}


def trigger_selector() -> EntitySelector:
    """Any binary sensor (it triggers when it turns on) or a doorbell event entity."""
    return EntitySelector(
        EntitySelectorConfig(
            multiple=True,
            filter=[
                {"domain": Platform.BINARY_SENSOR},
                {"domain": Platform.EVENT, "device_class": "doorbell"},
            ],
        )
    )


def device_triggers(hass: HomeAssistant, cameras: list[str]) -> list[str]:
    """Return the motion, occupancy, presence and doorbell entities of the cameras' devices."""
    registry = er.async_get(hass)
    found: list[str] = []
    for camera in cameras:
        camera_entry = registry.async_get(camera)
        if camera_entry is None or camera_entry.device_id is None:
            continue
        for entity in er.async_entries_for_device(registry, camera_entry.device_id):
            classes = TRIGGER_CLASSES.get(entity.domain, frozenset())
            device_class = entity.device_class or entity.original_device_class
            if (
                device_class in classes
                and entity.entity_id not in found
                and hass.states.get(entity.entity_id) is not None  # disabled or not loaded
            ):
                found.append(entity.entity_id)
    return found

"""Base entities of Compact AI: the service device and one device per camera."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .data import CompactAIConfigEntry


def service_device(entry: CompactAIConfigEntry) -> DeviceInfo:
    """Return the device of the integration itself."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name="Compact AI",
        manufacturer="Compact AI",
        entry_type=DeviceEntryType.SERVICE,
    )


def camera_device(hass: HomeAssistant, entry: CompactAIConfigEntry, camera: str) -> DeviceInfo:
    """Return the Compact AI device that stands for one scanned camera."""
    state = hass.states.get(camera)
    name = state.name if state else camera
    return DeviceInfo(
        identifiers={(DOMAIN, f"{entry.entry_id}_{camera}")},
        name=f"{name} faces",
        manufacturer="Compact AI",
        entry_type=DeviceEntryType.SERVICE,
        via_device=(DOMAIN, entry.entry_id),
    )


class CompactAIEntity(Entity):
    """An entity of Compact AI, available while the models are usable."""

    _attr_has_entity_name = True

    def __init__(
        self,
        entry: CompactAIConfigEntry,
        description: EntityDescription,
        device: DeviceInfo,
        scope: str = "",
    ) -> None:
        """Attach the entity to ``device``; ``scope`` makes unique ids per camera."""
        self.entity_description = description
        self._entry = entry
        suffix = f"{scope}_{description.key}" if scope else description.key
        self._attr_unique_id = f"{entry.entry_id}_{suffix}"
        self._attr_device_info = device

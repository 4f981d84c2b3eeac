"""Base entity of Compact AI."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .data import CompactAIConfigEntry


class CompactAIEntity(Entity):
    """An entity of the Compact AI service device."""

    _attr_has_entity_name = True

    def __init__(self, entry: CompactAIConfigEntry, description: EntityDescription) -> None:
        """Attach the entity to the entry's service device."""
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name="Compact AI",
            manufacturer="Compact AI",
            entry_type=DeviceEntryType.SERVICE,
        )

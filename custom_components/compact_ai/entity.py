"""Base entities of Compact AI: the service device and one device per camera."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .data import CompactAIConfigEntry
from .recognition import ScanReport


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


class CameraScanEntity(CompactAIEntity):
    """An entity of one scanned camera: available while the face models are usable."""

    def __init__(
        self,
        entry: CompactAIConfigEntry,
        description: EntityDescription,
        device: DeviceInfo,
        camera: str,
    ) -> None:
        """Follow the scans of ``camera``."""
        super().__init__(entry, description, device, camera)
        self._camera = camera

    @property
    def available(self) -> bool:
        """Available while the models are usable."""
        return self._entry.runtime_data.faces.available

    async def async_added_to_hass(self) -> None:
        """Subscribe to scan reports."""
        self.async_on_remove(self._entry.runtime_data.faces.async_add_listener(self._on_any))

    @callback
    def _on_any(self, report: ScanReport) -> None:
        if report.camera == self._camera:
            self._on_report(report)

    @callback
    def _on_report(self, report: ScanReport) -> None:
        """Handle a report of this entity's camera."""
        self.async_write_ha_state()

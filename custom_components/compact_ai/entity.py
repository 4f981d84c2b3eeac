"""Base entities of Compact AI: the service device and one device per camera."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import CONF_CAMERAS, DOMAIN
from .data import CompactAIConfigEntry
from .face.manager import ScanReport


def service_device(entry: CompactAIConfigEntry) -> DeviceInfo:
    """Return the device of the integration itself."""
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name="Compact AI",
        manufacturer="Compact AI",
        entry_type=DeviceEntryType.SERVICE,
    )


def camera_device(hass: HomeAssistant, entry: CompactAIConfigEntry, camera: str) -> DeviceInfo:
    """Return the Compact AI device that stands for one scanned camera.

    The device is registered here, below the service device: linked by device id
    (`via_device_id`; the `via_device` identifier tuple is deprecated and stops working in
    2027.8). Home Assistant 2026.2 does not take `via_device_id` when a device is created, so
    both releases link it the same way, with async_update_device.
    """
    state = hass.states.get(camera)
    name = state.name if state else camera
    info = DeviceInfo(
        identifiers={(DOMAIN, f"{entry.entry_id}_{camera}")},
        name=f"{name} faces",
        manufacturer="Compact AI",
        entry_type=DeviceEntryType.SERVICE,
    )
    registry = dr.async_get(hass)
    service = registry.async_get_or_create(config_entry_id=entry.entry_id, **service_device(entry))
    device = registry.async_get_or_create(config_entry_id=entry.entry_id, **info)
    if device.via_device_id != service.id:
        registry.async_update_device(device.id, via_device_id=service.id)
    return info


@callback
def async_remove_stale_cameras(hass: HomeAssistant, entry: CompactAIConfigEntry) -> None:
    """Remove the devices (and so the entities) of cameras no longer in the options."""
    wanted = {f"{entry.entry_id}_{camera}" for camera in entry.options.get(CONF_CAMERAS, [])}
    wanted.add(entry.entry_id)  # the service device
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        ours = {key for domain, key in device.identifiers if domain == DOMAIN}
        if ours and not ours & wanted:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


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

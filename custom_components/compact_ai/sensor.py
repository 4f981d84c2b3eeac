"""Sensors of Compact AI: last person per camera, inference time, backend, tier, voice training."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_CAMERAS, TIERS
from .data import CompactAIConfigEntry, CompactAIRuntime
from .engine.runtime.availability import BACKENDS
from .entity import CameraScanEntity, CompactAIEntity, camera_device, service_device
from .voice.trainer import TrainingState

# Nothing is polled: values come from scan reports and the training (pushed, not updated).
PARALLEL_UPDATES = 0
NO_FACE = "no_face"
UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class CompactAISensorDescription(SensorEntityDescription):
    """Describes a sensor whose value comes from the entry's runtime data."""

    value_fn: Callable[[CompactAIRuntime], str]


SENSORS: tuple[CompactAISensorDescription, ...] = (
    CompactAISensorDescription(
        key="backend",
        translation_key="backend",
        device_class=SensorDeviceClass.ENUM,
        options=list(BACKENDS),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda runtime: runtime.backend,
    ),
    CompactAISensorDescription(
        key="tier",
        translation_key="tier",
        device_class=SensorDeviceClass.ENUM,
        options=list(TIERS),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda runtime: runtime.tier,
    ),
)
LAST_PERSON = SensorEntityDescription(key="last_person", translation_key="last_person")
INFERENCE_TIME = SensorEntityDescription(
    key="inference_time",
    translation_key="inference_time",
    device_class=SensorDeviceClass.DURATION,
    native_unit_of_measurement=UnitOfTime.MILLISECONDS,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
    entity_category=EntityCategory.DIAGNOSTIC,
)


VOICE_TRAINING = SensorEntityDescription(
    key="voice_training",
    translation_key="voice_training",
    device_class=SensorDeviceClass.ENUM,
    options=[state.value for state in TrainingState],
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CompactAIConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of a config entry."""
    device = service_device(entry)
    entities: list[SensorEntity] = [
        RuntimeSensor(entry, description, device) for description in SENSORS
    ]
    entities.append(VoiceTrainingSensor(entry, VOICE_TRAINING, device))
    for camera in entry.options.get(CONF_CAMERAS, []):
        camera_info = camera_device(hass, entry, camera)
        entities.append(ScanSensor(entry, LAST_PERSON, camera_info, camera))
        entities.append(ScanSensor(entry, INFERENCE_TIME, camera_info, camera))
    async_add_entities(entities)


class RuntimeSensor(CompactAIEntity, SensorEntity):
    """A diagnostic sensor of the integration."""

    entity_description: CompactAISensorDescription

    @property
    def native_value(self) -> str:
        """Return the current value."""
        return self.entity_description.value_fn(self._entry.runtime_data)


class ScanSensor(CameraScanEntity, RestoreSensor):
    """What the last scan of one camera found, or how long it took.

    Until this run's first scan it shows the value from before (a reload or a restart), so
    changing the tier or restarting Home Assistant does not reset it to unknown.
    """

    _restored: str | float | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the scans; start from the value stored before."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_sensor_data()) is not None:
            value = last.native_value
            self._restored = value if isinstance(value, str | int | float) else None

    @property
    def native_value(self) -> str | float | None:
        """Return the person (or unknown / no face) or the inference time of the last scan."""
        report = self._entry.runtime_data.faces.last_report(self._camera)
        if report is None:
            return self._restored
        if report.scan is None:
            return None
        if self.entity_description.key == INFERENCE_TIME.key:
            return round(report.scan.inference_ms, 1)
        recognitions = report.scan.recognitions
        if not recognitions:
            return NO_FACE
        known = [name for r in recognitions if (name := report.person(r)) is not None]
        return known[0] if known else UNKNOWN


class VoiceTrainingSensor(CompactAIEntity, SensorEntity):
    """Whether the voice commands are training (with progress), failed or need recordings."""

    async def async_added_to_hass(self) -> None:
        """Follow the training."""
        commands = self._entry.runtime_data.commands
        self.async_on_remove(commands.async_add_listener(self.async_write_ha_state))

    @property
    def native_value(self) -> str:
        """Return the training state."""
        return self._entry.runtime_data.commands.trainer.state.value

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the phrases, the set in use, progress, error and recordings per phrase."""
        return self._entry.runtime_data.commands.as_dict()

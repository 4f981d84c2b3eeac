"""Sensors of Compact AI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import TIERS
from .data import CompactAIConfigEntry, CompactAIRuntime
from .engine.runtime import BACKENDS
from .entity import CompactAIEntity


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


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CompactAIConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of a config entry."""
    async_add_entities(CompactAISensor(entry, description) for description in SENSORS)


class CompactAISensor(CompactAIEntity, SensorEntity):
    """A diagnostic sensor of the integration."""

    entity_description: CompactAISensorDescription

    def __init__(
        self, entry: CompactAIConfigEntry, description: CompactAISensorDescription
    ) -> None:
        """Keep the entry whose runtime data the sensor shows."""
        super().__init__(entry, description)
        self._entry = entry

    @property
    def native_value(self) -> str:
        """Return the current value."""
        return self.entity_description.value_fn(self._entry.runtime_data)

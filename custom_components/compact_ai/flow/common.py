"""Small pieces the option and setup forms share."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)


def number(low: int, high: int, unit: str | None = None) -> NumberSelector:
    """Return a number box from ``low`` to ``high`` in steps of 1."""
    config = NumberSelectorConfig(min=low, max=high, step=1, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def missing(hass: HomeAssistant, entity_ids: list[str]) -> bool:
    """Return whether any of ``entity_ids`` has no state (removed, or never existed)."""
    return any(hass.states.get(entity_id) is None for entity_id in entity_ids)

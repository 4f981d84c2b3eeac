"""The second setup step: what starts a scan, so that a new setup scans without more options.

The cameras' own motion, occupancy, presence and doorbell entities are pre-selected. With a
trigger, each one starts a short burst of scans; without one the cameras are scanned at an
interval while they are on (scanning.py says why these numbers). The form says which of the
two will happen, and the dialog after setup says what was set up.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant

from ..const import CONF_CAMERAS, CONF_SCAN_INTERVAL, CONF_TRIGGERS
from ..scanning import DEFAULT_INTERVAL, TRIGGER_SCANS, TRIGGER_SPACING
from .triggers import device_triggers, trigger_selector

TITLE = "Compact AI"


def entity_names(hass: HomeAssistant, entity_ids: list[str]) -> str:
    """Return the friendly names of ``entity_ids``, comma separated (data, not words)."""
    return ", ".join(
        state.name if (state := hass.states.get(entity_id)) else entity_id
        for entity_id in entity_ids
    )


def scan_placeholders(hass: HomeAssistant, cameras: list[str]) -> dict[str, str]:
    """Return the numbers and names the scan texts show."""
    return {
        "cameras": entity_names(hass, cameras),
        "scans": str(TRIGGER_SCANS),
        "seconds": f"{(TRIGGER_SCANS - 1) * TRIGGER_SPACING:g}",
        "interval": str(DEFAULT_INTERVAL),
    }


class ScanSetupStep(ConfigFlow):
    """The setup step after the tier and cameras (the cameras' device decides the defaults)."""

    _settings: dict[str, Any]

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick the sensors that start a scan; create the entry with the matching interval."""
        cameras: list[str] = self._settings[CONF_CAMERAS]
        placeholders = scan_placeholders(self.hass, cameras)
        errors: dict[str, str] = {}
        if user_input is not None:
            triggers: list[str] = user_input.get(CONF_TRIGGERS, [])
            if any(self.hass.states.get(entity_id) is None for entity_id in triggers):
                errors[CONF_TRIGGERS] = "entity_not_found"
            else:
                options = {
                    **self._settings,
                    CONF_TRIGGERS: triggers,
                    CONF_SCAN_INTERVAL: 0 if triggers else DEFAULT_INTERVAL,
                }
                return self.async_create_entry(
                    title=TITLE,
                    data={},
                    options=options,
                    description="scan_on_trigger" if triggers else "scan_every",
                    description_placeholders={
                        **placeholders,
                        "triggers": entity_names(self.hass, triggers),
                    },
                )
        suggested = user_input or {CONF_TRIGGERS: device_triggers(self.hass, cameras)}
        return self.async_show_form(
            step_id="scan",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema({vol.Optional(CONF_TRIGGERS): trigger_selector()}), suggested
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

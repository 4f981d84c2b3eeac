"""Diagnostics for Compact AI: settings and runtime, with anything personal redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_CAMERAS
from .data import CompactAIConfigEntry
from .engine.runtime import available_backends

TO_REDACT = {CONF_CAMERAS}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: CompactAIConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    runtime = entry.runtime_data
    return {
        "options": async_redact_data(dict(entry.options), TO_REDACT),
        "camera_count": len(entry.options.get(CONF_CAMERAS, [])),
        "backend": runtime.backend,
        "available_backends": list(available_backends()),
        "tier": runtime.tier,
    }

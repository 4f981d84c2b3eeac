"""Diagnostics for Compact AI: settings and runtime, with anything personal redacted.

Nothing biometric and no names appear here: people are counted, cameras and locks redacted.
Voice commands show their phrases and training state, never audio.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import (
    CONF_CAMERAS,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_PRESENCE,
    CONF_TRIGGERS,
    CONF_UNLOCK_CAMERAS,
)
from .data import CompactAIConfigEntry
from .engine.runtime.availability import available_backends

TO_REDACT = {
    CONF_CAMERAS,
    CONF_TRIGGERS,
    CONF_LOCK,
    CONF_UNLOCK_CAMERAS,
    CONF_PEOPLE,
    CONF_PRESENCE,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: CompactAIConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    runtime = entry.runtime_data
    people = runtime.people.people.values()
    recognizer = runtime.faces.recognizer
    return {
        "options": async_redact_data(dict(entry.options), TO_REDACT),
        "camera_count": len(entry.options.get(CONF_CAMERAS, [])),
        "backend": runtime.backend,
        "available_backends": list(await hass.async_add_executor_job(available_backends)),
        "tier": runtime.tier,
        "models_loaded": recognizer is not None,
        "model_error": runtime.model_error,
        "threshold": recognizer.threshold if recognizer else None,
        "people_count": len(people),
        "sample_count": sum(len(person.samples) for person in people),
        "negative_count": sum(len(person.negatives) for person in people),
        "unlock_enabled": runtime.door is not None,
        "voice": {
            "models_loaded": runtime.voice.available,
            "model_error": runtime.voice.error,
            "training_state": runtime.commands.trainer.state.value,
            "trained": runtime.commands.store.trained,
            **runtime.commands.as_dict(),
        },
    }

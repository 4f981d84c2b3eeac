"""Compact AI: local, compressed face recognition and voice commands."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import BACKEND_AUTO, CONF_BACKEND, CONF_TIER, DEFAULT_TIER, DOMAIN
from .data import CompactAIConfigEntry, CompactAIRuntime
from .engine.errors import BackendUnavailableError
from .engine.runtime import resolve_backend
from .people import People

PLATFORMS: list[Platform] = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the integration-wide parts (services) once."""
    return True


async def async_setup_entry(hass: HomeAssistant, entry: CompactAIConfigEntry) -> bool:
    """Set up Compact AI from a config entry."""
    choice = entry.options.get(CONF_BACKEND, BACKEND_AUTO)
    try:
        backend = resolve_backend(choice)
    except BackendUnavailableError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="backend_unavailable",
            translation_placeholders={"backend": choice},
        ) from err
    people = People(hass)
    await people.async_load()
    entry.runtime_data = CompactAIRuntime(
        backend=backend, tier=entry.options.get(CONF_TIER, DEFAULT_TIER), people=people
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: CompactAIConfigEntry) -> bool:
    """Unload a config entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)

"""Config and options flow for Compact AI."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .const import (
    BACKEND_AUTO,
    BACKEND_CHOICES,
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_TIER,
    DEFAULT_TIER,
    DOMAIN,
    TIERS,
)
from .engine.runtime import backend_importable


def _settings_schema(defaults: dict[str, Any], *, advanced: bool) -> vol.Schema:
    """Return the schema shared by the user step and the options flow."""
    fields: dict[Any, Any] = {
        vol.Required(CONF_TIER, default=defaults.get(CONF_TIER, DEFAULT_TIER)): SelectSelector(
            SelectSelectorConfig(
                options=list(TIERS), translation_key=CONF_TIER, mode=SelectSelectorMode.LIST
            )
        ),
        vol.Optional(CONF_CAMERAS, default=defaults.get(CONF_CAMERAS, [])): EntitySelector(
            EntitySelectorConfig(domain=Platform.CAMERA, multiple=True)
        ),
    }
    if advanced:
        default_backend = defaults.get(CONF_BACKEND, BACKEND_AUTO)
        fields[vol.Required(CONF_BACKEND, default=default_backend)] = SelectSelector(
            SelectSelectorConfig(
                options=list(BACKEND_CHOICES),
                translation_key=CONF_BACKEND,
                mode=SelectSelectorMode.DROPDOWN,
            )
        )
    return vol.Schema(fields)


def _validate(hass: HomeAssistant, user_input: dict[str, Any]) -> dict[str, str]:
    """Return form errors for settings that cannot work on this installation."""
    errors: dict[str, str] = {}
    if any(hass.states.get(camera) is None for camera in user_input.get(CONF_CAMERAS, [])):
        errors[CONF_CAMERAS] = "camera_not_found"
    backend = user_input.get(CONF_BACKEND, BACKEND_AUTO)
    if backend != BACKEND_AUTO and not backend_importable(backend):
        errors[CONF_BACKEND] = "backend_unavailable"
    return errors


class CompactAIConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up Compact AI: pick a model tier and the cameras to watch."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Handle the only step of the initial setup."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _validate(self.hass, user_input)
            if not errors:
                return self.async_create_entry(title="Compact AI", data={}, options=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _settings_schema({}, advanced=False), user_input
            ),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> CompactAIOptionsFlow:
        """Return the options flow."""
        return CompactAIOptionsFlow()


class CompactAIOptionsFlow(OptionsFlowWithReload):
    """Change the tier, the cameras and (advanced) the inference backend."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and validate the settings form."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _validate(self.hass, user_input)
            if not errors:
                return self.async_create_entry(data={**self.config_entry.options, **user_input})
        advanced = bool(self.show_advanced_options)
        schema = _settings_schema(dict(self.config_entry.options), advanced=advanced)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

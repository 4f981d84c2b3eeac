"""Config and options flow for Compact AI."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)

from .const import (
    BACKEND_AUTO,
    BACKEND_CHOICES,
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_PHRASES,
    CONF_SCAN_INTERVAL,
    CONF_TIER,
    CONF_TRIGGERS,
    CONF_TTS_ENTITIES,
    DEFAULT_TIER,
    DOMAIN,
    SECTION_ADVANCED,
    TIERS,
)
from .engine.errors import BackendUnavailableError
from .engine.runtime.availability import backend_importable, resolve_backend
from .flow.common import missing, number
from .flow.people_enroll import EnrollSteps
from .flow.setup import TITLE, ScanSetupStep
from .flow.triggers import trigger_selector
from .flow.unlock import UnlockSteps
from .tiers import benchmark, benchmark_placeholders, tier_placeholders
from .voice.store import MIN_RECORDINGS_WITHOUT_TTS, VoiceError, phrase_list
from .voice.training import estimated_minutes


def _settings_schema(defaults: dict[str, Any], *, options: bool) -> vol.Schema:
    """Return the schema shared by the user step and the options' settings step.

    The options' step adds the scan triggers and interval, and the backend in a collapsed
    section: Home Assistant's advanced-mode flag (show_advanced_options) is deprecated,
    always on, and goes in 2027.6; a section is what it offers instead, on 2026.2 as well.
    """
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
    if options:
        fields[vol.Optional(CONF_TRIGGERS, default=defaults.get(CONF_TRIGGERS, []))] = (
            trigger_selector()
        )
        fields[vol.Required(CONF_SCAN_INTERVAL, default=defaults.get(CONF_SCAN_INTERVAL, 0))] = (
            number(0, 3600, "s")
        )
        # The backend rarely needs changing: automatic picks what imports.
        default_backend = defaults.get(CONF_BACKEND, BACKEND_AUTO)
        backend = SelectSelector(
            SelectSelectorConfig(
                options=list(BACKEND_CHOICES),
                translation_key=CONF_BACKEND,
                mode=SelectSelectorMode.DROPDOWN,
            )
        )
        fields[vol.Required(SECTION_ADVANCED)] = section(
            vol.Schema({vol.Required(CONF_BACKEND, default=default_backend): backend}),
            {"collapsed": True},
        )
    return vol.Schema(fields)


def _flatten(user_input: dict[str, Any]) -> dict[str, Any]:
    """Return the submitted settings with the advanced section's fields at the top level."""
    settings = dict(user_input)
    settings.update(settings.pop(SECTION_ADVANCED, {}))
    return settings


async def _tier_placeholders(hass: HomeAssistant, choice: str) -> dict[str, str]:
    """Return the tier table's numbers for the backend that ``choice`` runs on."""
    try:
        backend = await hass.async_add_executor_job(resolve_backend, choice)
    except BackendUnavailableError:
        backend = await hass.async_add_executor_job(resolve_backend, BACKEND_AUTO)
    return await hass.async_add_executor_job(tier_placeholders, backend)


async def _validate_settings(hass: HomeAssistant, user_input: dict[str, Any]) -> dict[str, str]:
    """Return form errors for settings that cannot work on this installation."""
    errors: dict[str, str] = {}
    if missing(hass, user_input.get(CONF_CAMERAS, [])):
        errors[CONF_CAMERAS] = "camera_not_found"
    if missing(hass, user_input.get(CONF_TRIGGERS, [])):
        errors[CONF_TRIGGERS] = "entity_not_found"
    backend = user_input.get(CONF_BACKEND, BACKEND_AUTO)
    if backend != BACKEND_AUTO and not await hass.async_add_executor_job(
        backend_importable, backend
    ):
        # "base": shown above the form, so it is seen while the section is collapsed.
        errors["base"] = "backend_unavailable"
    return errors


class CompactAIConfigFlow(ScanSetupStep, domain=DOMAIN):
    """Set up Compact AI: pick a model tier and the cameras to watch, then what scans them."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Handle the first step of the initial setup."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await _validate_settings(self.hass, user_input)
            if not errors and user_input.get(CONF_CAMERAS):
                self._settings = dict(user_input)
                return await self.async_step_scan()
            if not errors:
                return self.async_create_entry(title=TITLE, data={}, options=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _settings_schema({}, options=False), user_input
            ),
            errors=errors,
            description_placeholders=await _tier_placeholders(self.hass, BACKEND_AUTO),
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> CompactAIOptionsFlow:
        """Return the options flow."""
        return CompactAIOptionsFlow()


class CompactAIOptionsFlow(EnrollSteps, UnlockSteps, OptionsFlowWithReload):
    """Change the settings, the people and the door unlock policy."""

    @property
    def automatic_reload(self) -> bool:  # type: ignore[override]
        """Reload only an entry that is not running (a saved fix may let it start).

        A running entry applies saved options itself and reloads only when the tier, backend
        or cameras changed (reconfigure.py); sensors keep their state otherwise.
        """
        return self.config_entry.state is not ConfigEntryState.LOADED

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer the option pages."""
        return self.async_show_menu(
            step_id="init", menu_options=["settings", "people", "unlock", "voice", "benchmark"]
        )

    async def async_step_voice(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Edit the voice command phrases; saving trains them in the background."""
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED or not entry.runtime_data.voice.available:
            return self.async_abort(reason="voice_unavailable")
        commands = entry.runtime_data.commands
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                phrases = phrase_list(user_input.get(CONF_PHRASES, []))
            except VoiceError as err:
                errors[CONF_PHRASES] = err.key
            if missing(self.hass, user_input.get(CONF_TTS_ENTITIES, [])):
                errors[CONF_TTS_ENTITIES] = "entity_not_found"
            if not errors:
                await commands.async_set_tts_entities(tuple(user_input.get(CONF_TTS_ENTITIES, [])))
                await commands.async_set_phrases(phrases)
                return self.async_create_entry(data=dict(entry.options))
        voices = await commands.async_tts_voices()
        schema = vol.Schema(
            {
                vol.Optional(CONF_PHRASES): TextSelector(TextSelectorConfig(multiple=True)),
                vol.Optional(CONF_TTS_ENTITIES): EntitySelector(
                    EntitySelectorConfig(domain="tts", multiple=True)
                ),
            }
        )
        current = {
            CONF_PHRASES: list(commands.phrases),
            CONF_TTS_ENTITIES: list(commands.store.tts_entities),
        }
        return self.async_show_form(
            step_id="voice" if voices else "voice_no_tts",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or current),
            errors=errors,
            description_placeholders={
                "voices": str(voices),
                "minutes": str(estimated_minutes(len(commands.phrases))),
                "minimum": str(MIN_RECORDINGS_WITHOUT_TTS),
                "missing": ", ".join(commands.missing_recordings()) or "-",
            },
        )

    async_step_voice_no_tts = async_step_voice

    async def async_step_settings(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Tier, cameras, scan triggers and, in a collapsed section, the inference backend."""
        errors: dict[str, str] = {}
        if user_input is not None:
            settings = _flatten(user_input)
            errors = await _validate_settings(self.hass, settings)
            if not errors:
                return self.async_create_entry(data={**self.config_entry.options, **settings})
        schema = _settings_schema(dict(self.config_entry.options), options=True)
        return self.async_show_form(
            step_id="settings",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=await _tier_placeholders(
                self.hass, self.config_entry.options.get(CONF_BACKEND, BACKEND_AUTO)
            ),
        )

    async def async_step_benchmark(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Time every tier on this machine with a real snapshot, then let the user pick."""
        if user_input is not None:
            return self.async_create_entry(data={**self.config_entry.options, **user_input})
        entry = self.config_entry
        backend = (
            entry.runtime_data.backend
            if entry.state is ConfigEntryState.LOADED
            else await self.hass.async_add_executor_job(resolve_backend, BACKEND_AUTO)
        )
        frame = None
        for camera in entry.options.get(CONF_CAMERAS, []):
            try:
                frame = (await async_get_image(self.hass, camera, timeout=10)).content
                break
            except HomeAssistantError:
                continue
        household = (
            entry.runtime_data.people.chips() if entry.state is ConfigEntryState.LOADED else []
        )
        results = await self.hass.async_add_executor_job(benchmark, backend, frame, household)
        current = entry.options.get(CONF_TIER, DEFAULT_TIER)
        schema = vol.Schema(
            {
                vol.Required(CONF_TIER, default=current): SelectSelector(
                    SelectSelectorConfig(
                        options=list(TIERS), translation_key=CONF_TIER, mode=SelectSelectorMode.LIST
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="benchmark" if frame is not None else "benchmark_no_camera",
            data_schema=schema,
            description_placeholders={
                **benchmark_placeholders(results),
                **await self.hass.async_add_executor_job(tier_placeholders, backend),
            },
        )

    async_step_benchmark_no_camera = async_step_benchmark

"""Config and options flow for Compact AI."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components.camera import async_get_image
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
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
    CONF_COOLDOWN,
    CONF_ENABLED,
    CONF_FRAMES_REQUIRED,
    CONF_FRAMES_WINDOW,
    CONF_LIVENESS,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_PHRASES,
    CONF_PRESENCE,
    CONF_REQUIRE_PRESENCE,
    CONF_SCAN_INTERVAL,
    CONF_STRICT,
    CONF_TIER,
    CONF_TRIGGERS,
    CONF_UNLOCK,
    CONF_UNLOCK_CAMERAS,
    CONF_WINDOW_SECONDS,
    DEFAULT_TIER,
    DEFAULT_UNLOCK,
    DOMAIN,
    SECTION_ADVANCED,
    TIERS,
)
from .engine.runtime.availability import backend_importable, resolve_backend
from .tiers import benchmark, tier_summary
from .voice.store import MIN_RECORDINGS_WITHOUT_TTS, VoiceError, phrase_list
from .voice.training import estimated_minutes


def _number(low: int, high: int, unit: str | None = None) -> NumberSelector:
    config = NumberSelectorConfig(min=low, max=high, step=1, mode=NumberSelectorMode.BOX)
    if unit:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


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
            EntitySelector(EntitySelectorConfig(domain=Platform.BINARY_SENSOR, multiple=True))
        )
        fields[vol.Required(CONF_SCAN_INTERVAL, default=defaults.get(CONF_SCAN_INTERVAL, 0))] = (
            _number(0, 3600, "s")
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


def _missing(hass: HomeAssistant, entity_ids: list[str]) -> bool:
    return any(hass.states.get(entity_id) is None for entity_id in entity_ids)


async def _validate_settings(hass: HomeAssistant, user_input: dict[str, Any]) -> dict[str, str]:
    """Return form errors for settings that cannot work on this installation."""
    errors: dict[str, str] = {}
    if _missing(hass, user_input.get(CONF_CAMERAS, [])):
        errors[CONF_CAMERAS] = "camera_not_found"
    if _missing(hass, user_input.get(CONF_TRIGGERS, [])):
        errors[CONF_TRIGGERS] = "entity_not_found"
    backend = user_input.get(CONF_BACKEND, BACKEND_AUTO)
    if backend != BACKEND_AUTO and not await hass.async_add_executor_job(
        backend_importable, backend
    ):
        # "base": shown above the form, so it is seen while the section is collapsed.
        errors["base"] = "backend_unavailable"
    return errors


class CompactAIConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up Compact AI: pick a model tier and the cameras to watch."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Handle the only step of the initial setup."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = await _validate_settings(self.hass, user_input)
            if not errors:
                return self.async_create_entry(title="Compact AI", data={}, options=user_input)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _settings_schema({}, options=False), user_input
            ),
            errors=errors,
            description_placeholders={
                "tiers": await self.hass.async_add_executor_job(tier_summary)
            },
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> CompactAIOptionsFlow:
        """Return the options flow."""
        return CompactAIOptionsFlow()


class CompactAIOptionsFlow(OptionsFlowWithReload):
    """Change the settings and the door unlock policy."""

    def __init__(self) -> None:
        """Start with no pending unlock policy."""
        self._unlock: dict[str, Any] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Offer the option pages."""
        return self.async_show_menu(
            step_id="init", menu_options=["settings", "unlock", "voice", "benchmark"]
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
            else:
                await commands.async_set_phrases(phrases)
                return self.async_create_entry(data=dict(entry.options))
        voices = await commands.async_tts_voices()
        schema = vol.Schema(
            {vol.Optional(CONF_PHRASES): TextSelector(TextSelectorConfig(multiple=True))}
        )
        return self.async_show_form(
            step_id="voice" if voices else "voice_no_tts",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {CONF_PHRASES: list(commands.phrases)}
            ),
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
            description_placeholders={
                "tiers": await self.hass.async_add_executor_job(tier_summary)
            },
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
        results = await self.hass.async_add_executor_job(benchmark, backend, frame)
        table = "\n".join(f"- {tier}: {text}" for tier, text in results.items())
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
            step_id="benchmark",
            data_schema=schema,
            description_placeholders={"results": table, "backend": backend},
        )

    def _enrolled_people(self) -> dict[str, str]:
        """Return person id -> display name (authorization is stored by id, never by name)."""
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return {}
        return entry.runtime_data.people.names()

    async def async_step_unlock(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Set the door unlock policy (off until a lock, cameras and people are chosen)."""
        current = {**DEFAULT_UNLOCK, **self.config_entry.options.get(CONF_UNLOCK, {})}
        people = self._enrolled_people()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._validate_unlock(user_input)
            if not errors:
                self._unlock = {**current, **user_input}
                if user_input[CONF_ENABLED] and user_input[CONF_REQUIRE_PRESENCE]:
                    return await self.async_step_presence()
                return self._save_unlock()
        cameras = self.config_entry.options.get(CONF_CAMERAS, [])
        schema = vol.Schema(
            {
                vol.Required(CONF_ENABLED, default=current[CONF_ENABLED]): BooleanSelector(),
                vol.Optional(CONF_LOCK): EntitySelector(EntitySelectorConfig(domain=Platform.LOCK)),
                vol.Optional(CONF_UNLOCK_CAMERAS, default=[]): EntitySelector(
                    EntitySelectorConfig(
                        domain=Platform.CAMERA, multiple=True, include_entities=cameras
                    )
                ),
                vol.Optional(CONF_PEOPLE, default=[]): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=person_id, label=name)
                            for person_id, name in sorted(people.items(), key=lambda p: p[1])
                        ],
                        multiple=True,
                    )
                ),
                vol.Required(CONF_FRAMES_REQUIRED): _number(1, 10),
                vol.Required(CONF_FRAMES_WINDOW): _number(1, 10),
                vol.Required(CONF_WINDOW_SECONDS): _number(1, 60, "s"),
                vol.Required(CONF_STRICT): BooleanSelector(),
                vol.Required(CONF_COOLDOWN): _number(0, 3600, "s"),
                vol.Required(CONF_LIVENESS): BooleanSelector(),
                vol.Required(CONF_REQUIRE_PRESENCE): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="unlock",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or current),
            errors=errors,
        )

    def _validate_unlock(self, user_input: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if user_input[CONF_FRAMES_REQUIRED] > user_input[CONF_FRAMES_WINDOW]:
            errors[CONF_FRAMES_REQUIRED] = "frames_required_too_high"
        elif user_input[CONF_LIVENESS] and user_input[CONF_FRAMES_REQUIRED] < 2:
            errors[CONF_FRAMES_REQUIRED] = "liveness_needs_two_frames"
        if not user_input[CONF_ENABLED]:
            return errors
        lock = user_input.get(CONF_LOCK)
        if not lock:
            errors[CONF_LOCK] = "lock_required"
        elif _missing(self.hass, [lock]):
            errors[CONF_LOCK] = "entity_not_found"
        if not user_input.get(CONF_UNLOCK_CAMERAS):
            errors[CONF_UNLOCK_CAMERAS] = "cameras_required"
        if not user_input.get(CONF_PEOPLE):
            errors[CONF_PEOPLE] = "people_required"
        return errors

    async def async_step_presence(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Pick the phone (device tracker or person) that must be home for each person."""
        names = self._enrolled_people()  # the form asks by name, the options keep ids
        people = {
            names.get(person_id, person_id): person_id for person_id in self._unlock[CONF_PEOPLE]
        }
        errors: dict[str, str] = {}
        if user_input is not None:
            missing = [name for name in people if _missing(self.hass, [user_input[name]])]
            if not missing:
                self._unlock[CONF_PRESENCE] = {
                    pid: user_input[name] for name, pid in people.items()
                }
                return self._save_unlock()
            errors = dict.fromkeys(missing, "entity_not_found")
        stored = self.config_entry.options.get(CONF_UNLOCK, {}).get(CONF_PRESENCE, {})
        current = {name: stored[pid] for name, pid in people.items() if pid in stored}
        schema = vol.Schema(
            {
                vol.Required(name): EntitySelector(
                    EntitySelectorConfig(domain=[Platform.DEVICE_TRACKER, "person"])
                )
                for name in people
            }
        )
        return self.async_show_form(
            step_id="presence",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or current),
            errors=errors,
        )

    def _save_unlock(self) -> ConfigFlowResult:
        unlock = {
            key: int(value) if isinstance(value, float) else value
            for key, value in self._unlock.items()
        }
        return self.async_create_entry(data={**self.config_entry.options, CONF_UNLOCK: unlock})

"""The Door unlock page of the options: the policy, then each person's phone if asked for.

With nobody enrolled the page first offers the way to the People page (the door cannot be
turned on without an authorized person).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult, OptionsFlow
from homeassistant.const import Platform
from homeassistant.helpers.selector import (
    BooleanSelector,
    EntitySelector,
    EntitySelectorConfig,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
)

from ..const import (
    CONF_CAMERAS,
    CONF_COOLDOWN,
    CONF_ENABLED,
    CONF_FRAMES_REQUIRED,
    CONF_FRAMES_WINDOW,
    CONF_LIVENESS,
    CONF_LOCK,
    CONF_PEOPLE,
    CONF_PRESENCE,
    CONF_REQUIRE_PRESENCE,
    CONF_STRICT,
    CONF_UNLOCK,
    CONF_UNLOCK_CAMERAS,
    CONF_WINDOW_SECONDS,
    DEFAULT_UNLOCK,
)
from .common import missing, number


class UnlockSteps(OptionsFlow):
    """The door unlock policy and the phones of the second factor."""

    _unlock: dict[str, Any]  # the policy being edited, saved after the phones step
    _nobody_told = False

    def _enrolled_people(self) -> dict[str, str]:
        """Return person id -> display name (authorization is stored by id, never by name)."""
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED:
            return {}
        names: dict[str, str] = entry.runtime_data.people.names()
        return names

    async def async_step_unlock(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Set the door unlock policy (off until a lock, cameras and people are chosen)."""
        current = {**DEFAULT_UNLOCK, **self.config_entry.options.get(CONF_UNLOCK, {})}
        people = self._enrolled_people()
        if not people and not self._nobody_told:  # a way to the People page first
            self._nobody_told = True
            return self.async_show_menu(step_id="unlock_nobody", menu_options=["people", "unlock"])
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
                vol.Required(CONF_FRAMES_REQUIRED): number(1, 10),
                vol.Required(CONF_FRAMES_WINDOW): number(1, 10),
                vol.Required(CONF_WINDOW_SECONDS): number(1, 60, "s"),
                vol.Required(CONF_STRICT): BooleanSelector(),
                vol.Required(CONF_COOLDOWN): number(0, 3600, "s"),
                vol.Required(CONF_LIVENESS): BooleanSelector(),
                vol.Required(CONF_REQUIRE_PRESENCE): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="unlock",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or current),
            errors=errors,
        )

    async_step_unlock_nobody = async_step_unlock

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
        elif missing(self.hass, [lock]):
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
            gone = [name for name in people if missing(self.hass, [user_input[name]])]
            if not gone:
                self._unlock[CONF_PRESENCE] = {
                    pid: user_input[name] for name, pid in people.items()
                }
                return self._save_unlock()
            errors = dict.fromkeys(gone, "entity_not_found")
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

"""The People page of the options: the list of people, renaming and deleting.

Options flows are for administrators only (Home Assistant's options flow views require an
admin), as the enrollment services are. Every change goes through the code the services use:
``FaceManager.async_rename``, and ``async_delete_person`` for a complete deletion (door
authorization, phone, negatives, chips; a repair issue if the door is left without anyone).
Enrolling is in people_enroll.py.
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult, OptionsFlow
from homeassistant.helpers.selector import (
    BooleanSelector,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
)
from homeassistant.util import dt as dt_util

from ..const import CONF_PEOPLE, CONF_UNLOCK
from ..data import CompactAIRuntime
from ..errors import UserError
from ..face.services import async_delete_person

CONF_PERSON: Final = "person"
CONF_NEW_NAME: Final = "new_name"
CONF_DELETE: Final = "delete"
CONF_CONFIRM: Final = "confirm"
NEVER: Final = "-"


def _cell(text: str) -> str:
    """Return ``text`` safe inside a markdown table cell."""
    return "".join(f"\\{c}" if c in "\\|*_[]<>`#" else c for c in text)


def person_name(names: dict[str, str], person_id: str) -> str:
    """Return the name of ``person_id``; raise if they were deleted since the form was shown."""
    if person_id not in names:
        raise UserError("person_not_found", name=person_id)
    return names[person_id]


def people_table(runtime: CompactAIRuntime) -> str:
    """Return one markdown table row per person: name, faces, negatives, last seen (data only)."""
    rows = []
    for person in sorted(runtime.people.people.values(), key=lambda p: p.name):
        seen = runtime.last_seen.get(person.person_id)
        when = dt_util.as_local(seen).strftime("%Y-%m-%d %H:%M") if seen else NEVER
        rows.append(
            f"| {_cell(person.name)} | {len(person.samples)} | {len(person.negatives)} | {when} |"
        )
    return "\n".join(rows)


class PeopleSteps(OptionsFlow):
    """The People menu, renaming and deleting (the enrolling steps build on it)."""

    _delete: str = ""  # the person id about to be deleted

    def _runtime(self) -> CompactAIRuntime | None:
        entry = self.config_entry
        if entry.state is not ConfigEntryState.LOADED or not entry.runtime_data.faces.available:
            return None
        runtime: CompactAIRuntime = entry.runtime_data
        return runtime

    def _people_options(self, runtime: CompactAIRuntime) -> list[SelectOptionDict]:
        return [
            SelectOptionDict(value=person_id, label=name)
            for person_id, name in sorted(runtime.people.names().items(), key=lambda p: p[1])
        ]

    async def async_step_people(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """List the people with their faces and when they were last seen; offer the actions."""
        runtime = self._runtime()
        if runtime is None:
            return self.async_abort(reason="models_unavailable")
        if not runtime.people.people:
            return self.async_show_menu(step_id="people_empty", menu_options=["add_person", "done"])
        return self.async_show_menu(
            step_id="people",
            menu_options=["add_person", "add_faces", "add_negative", "edit_person", "done"],
            description_placeholders={"people": people_table(runtime)},
        )

    async_step_people_empty = async_step_people

    async def async_step_done(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Close the options: people are saved as they change, the options stay as they are."""
        return self.async_create_entry(data=dict(self.config_entry.options))

    async def async_step_edit_person(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Rename a person, or go on to delete them."""
        runtime = self._runtime()
        if runtime is None:
            return self.async_abort(reason="models_unavailable")
        names = runtime.people.names()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            person_id = user_input[CONF_PERSON]
            if user_input.get(CONF_DELETE):
                self._delete = person_id
                return await self.async_step_delete_person()
            if not (new_name := user_input.get(CONF_NEW_NAME, "")):
                return await self.async_step_people()
            try:
                await runtime.faces.async_rename(person_name(names, person_id), new_name)
            except UserError as err:
                errors[CONF_NEW_NAME] = err.key
                placeholders.update(err.placeholders)
            else:
                return await self.async_step_people()
        schema = vol.Schema(
            {
                vol.Required(CONF_PERSON): SelectSelector(
                    SelectSelectorConfig(options=self._people_options(runtime))
                ),
                vol.Optional(CONF_NEW_NAME): TextSelector(),
                vol.Optional(CONF_DELETE, default=False): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="edit_person",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_delete_person(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask before deleting; say so when the person may open the door."""
        runtime = self._runtime()
        person = runtime.people.people.get(self._delete) if runtime else None
        if runtime is None or person is None:
            return self.async_abort(reason="models_unavailable")
        authorized = person.person_id in self.config_entry.options.get(CONF_UNLOCK, {}).get(
            CONF_PEOPLE, []
        )
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input.get(CONF_CONFIRM):
                await async_delete_person(self.hass, self.config_entry, person.name)
                return await self.async_step_people()
            errors[CONF_CONFIRM] = "confirm_delete"
        return self.async_show_form(
            step_id="delete_authorized" if authorized else "delete_person",
            data_schema=vol.Schema({vol.Required(CONF_CONFIRM, default=False): BooleanSelector()}),
            errors=errors,
            description_placeholders={
                "person": person.name,
                "faces": str(len(person.samples)),
                "negatives": str(len(person.negatives)),
            },
        )

    async_step_delete_authorized = async_step_delete_person

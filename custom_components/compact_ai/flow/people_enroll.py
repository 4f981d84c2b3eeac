"""The People page's enrolling steps: a new person, more faces, negatives.

From a camera, SNAPSHOTS snapshots are taken SPACING apart while a progress dialog says so;
from a photo, the upload is read at once. After each round the form shows what became of
every image and the faces that were stored, and takes another photo for the same person.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_NAME, Platform
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.selector import (
    EntitySelector,
    EntitySelectorConfig,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
)

from ..const import CONF_CAMERAS, CONF_PEOPLE
from ..data import CompactAIRuntime
from ..errors import UserError
from ..face.manager import MAX_IMAGE_BYTES
from ..face.services import MAX_FILES
from .enroll import (
    PHOTO,
    SNAPSHOTS,
    SPACING,
    Outcome,
    Target,
    async_enroll,
    chips_markdown,
    outcome_fields,
)
from .people import CONF_PERSON, PeopleSteps, person_name
from .setup import entity_names
from .uploads import PhotoSelector, discard_uploads, file_ids, read_uploads

CONF_CAMERA: Final = "camera"
# The form field each error is shown at ("who" is the step's person or name field).
_ERROR_FIELDS: Final = {
    "invalid_name": "who",
    "person_exists": "who",
    "name_collision": "who",
    "person_not_found": "who",
    "people_required": "who",
    "photo_too_large": PHOTO,
    "photo_missing": PHOTO,
    "too_many_photos": PHOTO,
    "camera_not_found": CONF_CAMERA,
    "camera_unavailable": CONF_CAMERA,
}


def _negatives_for(data: dict[str, Any], names: dict[str, str]) -> Target:
    if not data[CONF_PEOPLE]:
        raise UserError("people_required")
    return Target([person_name(names, pid) for pid in data[CONF_PEOPLE]], negative=True)


def check_photo_count(photos: list[str]) -> None:
    """Refuse more photos than one enrollment takes (raises UserError)."""
    if len(photos) > MAX_FILES:
        raise UserError("too_many_photos", count=str(len(photos)), limit=str(MAX_FILES))


class EnrollSteps(PeopleSteps):
    """Enrolling from the People page."""

    _target: Target | None = None
    _outcome: Outcome | None = None
    _capture: asyncio.Task[Outcome] | None = None
    _form: str = "add_person"  # the form a failed capture goes back to
    # A failed capture's errors and placeholders, and the form as typed, for the form to show
    _pending: tuple[dict[str, str], dict[str, str], dict[str, Any] | None] | None = None
    _who: str = CONF_NAME  # the field of the current form that names the person(s)
    _input: dict[str, Any] | None = None  # the form a capture started from, as typed

    def _source_fields(self) -> dict[Any, Any]:
        return {
            vol.Optional(CONF_CAMERA): EntitySelector(EntitySelectorConfig(domain=Platform.CAMERA)),
            vol.Optional(PHOTO): PhotoSelector(),
        }

    async def async_step_add_person(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Enroll a new person from camera snapshots or a photo."""
        schema = {vol.Required(CONF_NAME): TextSelector(), **self._source_fields()}
        return await self._enroll_form(
            "add_person", schema, user_input, lambda data, _: Target([data[CONF_NAME]])
        )

    async def async_step_add_faces(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add faces of an enrolled person."""
        runtime = self._runtime()
        options = self._people_options(runtime) if runtime else []
        schema = {
            vol.Required(CONF_PERSON): SelectSelector(SelectSelectorConfig(options=options)),
            **self._source_fields(),
        }
        return await self._enroll_form(
            "add_faces",
            schema,
            user_input,
            lambda data, names: Target(
                [person_name(names, data[CONF_PERSON])], add_to_existing=True
            ),
        )

    async def async_step_add_negative(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Add faces that must never match the chosen people (all of them unless changed)."""
        runtime = self._runtime()
        options = self._people_options(runtime) if runtime else []
        schema = {
            vol.Required(CONF_PEOPLE): SelectSelector(
                SelectSelectorConfig(options=options, multiple=True)
            ),
            **self._source_fields(),
        }
        defaults = {CONF_PEOPLE: [option["value"] for option in options]}
        return await self._enroll_form(
            "add_negative",
            schema,
            user_input,
            _negatives_for,
            defaults,
        )

    async def _enroll_form(
        self,
        step_id: str,
        fields: dict[Any, Any],
        user_input: dict[str, Any] | None,
        make_target: Callable[[dict[str, Any], dict[str, str]], Target],
        defaults: dict[str, Any] | None = None,
    ) -> ConfigFlowResult:
        runtime = self._runtime()
        if runtime is None:
            return self.async_abort(reason="models_unavailable")
        errors: dict[str, str] = {}
        placeholders = {
            "scans": str(SNAPSHOTS),
            "seconds": f"{(SNAPSHOTS - 1) * SPACING:g}",
            "size": str(MAX_IMAGE_BYTES >> 20),
        }
        self._who = next(iter(fields)).schema  # the first field names the person(s)
        if self._pending is not None:  # a capture that failed comes back here
            (errors, more, user_input), self._pending = self._pending, None
            placeholders.update(more)
        elif user_input is not None:
            try:
                target = make_target(user_input, runtime.people.names())
                return await self._start(step_id, runtime, target, user_input)
            except UserError as err:
                errors[self._error_field(err.key)] = err.key
                placeholders.update(err.placeholders)
                if photos := file_ids(user_input.get(PHOTO)):  # an upload is never kept
                    await self.hass.async_add_executor_job(discard_uploads, self.hass, photos)
        suggested = dict(defaults or {})
        if cameras := self.config_entry.options.get(CONF_CAMERAS, []):
            suggested[CONF_CAMERA] = cameras[0]
        if user_input is not None:  # as typed; an upload is gone once looked at
            suggested = {key: value for key, value in user_input.items() if key != PHOTO}
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(vol.Schema(fields), suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _error_field(self, key: str) -> str:
        field = _ERROR_FIELDS.get(key, "base")
        return self._who if field == "who" else field

    async def _start(
        self, step_id: str, runtime: CompactAIRuntime, target: Target, data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Enroll the uploaded photos now, or start taking snapshots (raises UserError)."""
        photos = file_ids(data.get(PHOTO))
        if photos:
            return await self._enroll_photos(runtime, target, photos)
        camera = data.get(CONF_CAMERA)
        if not camera:
            raise UserError("camera_or_photo")
        if self.hass.states.get(camera) is None:
            raise UserError("camera_not_found", camera=camera)
        target.check(runtime.faces, SNAPSHOTS)
        self._form, self._target, self._input = step_id, target, data
        self._capture = self.hass.async_create_task(self._async_capture(runtime, camera, target))
        return self.async_show_progress(
            step_id="capture",
            progress_action="capture",
            progress_task=self._capture,
            description_placeholders={
                "camera": entity_names(self.hass, [camera]),
                "scans": str(SNAPSHOTS),
                "seconds": f"{(SNAPSHOTS - 1) * SPACING:g}",
            },
        )

    async def _async_capture(
        self, runtime: CompactAIRuntime, camera: str, target: Target
    ) -> Outcome:
        try:
            images = await runtime.faces.async_snapshots(camera, SNAPSHOTS, SPACING)
        except HomeAssistantError as err:
            raise UserError("camera_unavailable", camera=entity_names(self.hass, [camera])) from err
        return await async_enroll(runtime.faces, target, images, "snapshot")

    async def async_step_capture(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Wait for the snapshots; then show what became of them (or the form's error)."""
        task = self._capture
        assert task is not None
        if not task.done():  # the frontend asked again meanwhile
            return self.async_show_progress(
                step_id="capture", progress_action="capture", progress_task=task
            )
        self._capture = None
        try:
            self._outcome = task.result()
        except UserError as err:
            errors = {self._error_field(err.key): err.key}
            self._pending = (errors, err.placeholders, self._input)
            return self.async_show_progress_done(next_step_id=self._form)
        return self.async_show_progress_done(next_step_id=self._result_step())

    async def _enroll_photos(
        self, runtime: CompactAIRuntime, target: Target, photos: list[str]
    ) -> ConfigFlowResult:
        """Check the count and the room first, then read and enroll (raises UserError)."""
        try:
            check_photo_count(photos)
            target.check(runtime.faces, len(photos))
        except UserError:
            await self.hass.async_add_executor_job(discard_uploads, self.hass, photos)
            raise
        images = await self.hass.async_add_executor_job(read_uploads, self.hass, photos)
        self._target = target
        self._outcome = await async_enroll(runtime.faces, target, images, "photo")
        return await self.async_step_enroll_result()

    def _result_step(self) -> str:
        """Return the step that shows the last round; later photos go to the same person."""
        target, outcome = self._target, self._outcome
        assert target is not None and outcome is not None
        if target.negative:
            return "negative_result"
        if outcome.enrolled:
            target.add_to_existing = True  # the person exists now (this flow enrolled them)
        return "enroll_result"

    async def async_step_enroll_result(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show each image's outcome and the stored chips; take another photo or go back."""
        runtime, target, outcome = self._runtime(), self._target, self._outcome
        if runtime is None or target is None or outcome is None:
            return self.async_abort(reason="models_unavailable")
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            photos = file_ids(user_input.get(PHOTO))
            if not photos:
                return await self.async_step_people()
            try:
                return await self._enroll_photos(runtime, target, photos)
            except UserError as err:
                errors[PHOTO if _ERROR_FIELDS.get(err.key) == PHOTO else "base"] = err.key
                placeholders.update(err.placeholders)
        fields, labels = outcome_fields(outcome)
        person = runtime.people.find(outcome.person) if outcome.person else None
        return self.async_show_form(
            step_id=self._result_step(),
            data_schema=vol.Schema({**fields, vol.Optional(PHOTO): PhotoSelector()}),
            errors=errors,
            description_placeholders={
                **labels,
                **placeholders,
                "person": ", ".join(target.names) if target.negative else outcome.person,
                "enrolled": str(outcome.enrolled),
                "total": str(len(person.samples) if person else 0),
                "chips": chips_markdown(outcome.chips),
            },
        )

    async_step_negative_result = async_step_enroll_result

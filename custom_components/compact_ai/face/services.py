"""Services: enroll and delete people, list them, and scan cameras on demand.

Every service that changes people or scans on demand is an admin service: a non-admin user
could otherwise enroll their own face under an authorized person's name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable
from typing import Any

import voluptuous as vol
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service

from ..const import CONF_CAMERAS, DOMAIN
from ..data import CompactAIConfigEntry
from ..door import async_forget_person
from ..errors import UserError
from ..helpers.files import check_all_allowed, read_allowed
from .manager import MAX_IMAGE_BYTES
from .people import MAX_NAME_LENGTH, PeopleError, Person

ATTR_NAME = "name"
ATTR_CAMERA = "camera"
ATTR_FILES = "files"
ATTR_SNAPSHOTS = "snapshots"
ATTR_INTERVAL = "interval"
ATTR_ADD_TO_EXISTING = "add_to_existing"

SERVICE_ENROLL_FACE = "enroll_face"
SERVICE_ENROLL_NEGATIVE = "enroll_negative"
SERVICE_DELETE_PERSON = "delete_person"
SERVICE_LIST_PEOPLE = "list_people"
SERVICE_SCAN = "scan"
MAX_FILES = 10  # per call: each file is read whole (up to MAX_IMAGE_BYTES) before decoding

NAME = vol.All(cv.string, vol.Length(min=1, max=MAX_NAME_LENGTH))
ENROLL_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_NAME): NAME,
        vol.Optional(ATTR_CAMERA): cv.entity_domain("camera"),
        vol.Optional(ATTR_FILES): vol.All(cv.ensure_list, [cv.string], vol.Length(max=MAX_FILES)),
        vol.Optional(ATTR_SNAPSHOTS, default=3): vol.All(vol.Coerce(int), vol.Range(1, 10)),
        vol.Optional(ATTR_INTERVAL, default=1.0): vol.All(
            vol.Coerce(float), vol.Range(min=0, max=10)
        ),
    }
)
ENROLL_FACE_SCHEMA = ENROLL_SCHEMA.extend(
    {vol.Optional(ATTR_ADD_TO_EXISTING, default=False): cv.boolean}
)
DELETE_SCHEMA = vol.Schema({vol.Required(ATTR_NAME): NAME})
SCAN_SCHEMA = vol.Schema({vol.Optional(ATTR_ENTITY_ID): cv.entity_ids})


def service_error(key: str, **placeholders: str) -> ServiceValidationError:
    """Return the translated error ``key`` for a service call."""
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def loaded_entry(hass: HomeAssistant) -> CompactAIConfigEntry:
    """Return the loaded Compact AI entry, or raise a translated error."""
    entries = hass.config_entries.async_loaded_entries(DOMAIN)
    if not entries:
        raise service_error("not_loaded")
    entry: CompactAIConfigEntry = entries[0]
    return entry


def _entry(hass: HomeAssistant) -> CompactAIConfigEntry:
    entry = loaded_entry(hass)
    if not entry.runtime_data.faces.available:
        raise service_error("models_unavailable", error=entry.runtime_data.model_error or "")
    return entry


async def _images(
    hass: HomeAssistant, entry: CompactAIConfigEntry, call: ServiceCall
) -> AsyncGenerator[tuple[str, bytes]]:
    """Return the (source, bytes) of the snapshots or files a call names, one at a time.

    Every file is checked before the first is read; each is read when the one before it
    was embedded, so a call holds one image, not ten.
    """
    camera: str | None = call.data.get(ATTR_CAMERA)
    files: list[str] = call.data.get(ATTR_FILES, [])
    if bool(camera) == bool(files):
        raise service_error("camera_or_files")
    if camera:
        if hass.states.get(camera) is None:
            raise service_error("camera_not_found", camera=camera)
        return _snapshots(entry, camera, call.data[ATTR_SNAPSHOTS], call.data[ATTR_INTERVAL])
    await _user_errors(
        hass.async_add_executor_job(check_all_allowed, hass.config, files, MAX_IMAGE_BYTES)
    )
    return _files(hass, files)


async def _snapshots(
    entry: CompactAIConfigEntry, camera: str, count: int, interval: float
) -> AsyncGenerator[tuple[str, bytes]]:
    for index in range(count):
        if index:
            await asyncio.sleep(interval)
        try:
            image = await entry.runtime_data.faces.async_snapshot(camera)
        except HomeAssistantError as err:
            raise service_error("camera_unavailable", camera=camera) from err
        yield f"snapshot {index + 1}", image


async def _files(hass: HomeAssistant, files: list[str]) -> AsyncGenerator[tuple[str, bytes]]:
    for path in files:  # no local keeps the bytes alive while the next file is read
        yield (
            path,
            await _user_errors(
                hass.async_add_executor_job(read_allowed, hass.config, path, MAX_IMAGE_BYTES)
            ),
        )


async def _user_errors[T](job: Awaitable[T]) -> T:
    """Await ``job``; a :class:`UserError` becomes the translated service error."""
    try:
        return await job
    except UserError as err:
        raise service_error(err.key, **err.placeholders) from err


async def _enroll(call: ServiceCall, *, negative: bool) -> ServiceResponse:
    hass = call.hass
    entry = _entry(hass)
    faces = entry.runtime_data.faces
    name, add = call.data[ATTR_NAME], call.data.get(ATTR_ADD_TO_EXISTING, False)
    count = len(call.data.get(ATTR_FILES) or ()) or call.data[ATTR_SNAPSHOTS]
    try:
        # who and how many, before any file is read or snapshot taken
        faces.people.check_room(name, count, negative=negative, add_to_existing=add)
        async with contextlib.aclosing(await _images(hass, entry, call)) as images:
            result = await faces.async_enroll(name, images, negative=negative, add_to_existing=add)
    except PeopleError as err:
        raise service_error(err.key, **err.placeholders) from err
    if not result["enrolled"]:
        reasons = ", ".join(sorted({item["reason"] for item in result["rejected"]}))
        raise service_error("nothing_enrolled", reasons=reasons)
    return result


async def _enroll_face(call: ServiceCall) -> ServiceResponse:
    return await _enroll(call, negative=False)


async def _enroll_negative(call: ServiceCall) -> ServiceResponse:
    return await _enroll(call, negative=True)


async def async_delete_person(
    hass: HomeAssistant, entry: CompactAIConfigEntry, name: str
) -> Person:
    """Delete a person completely; raise PeopleError if nobody is called ``name``.

    Their faces and chips, their face among other people's negatives, their door
    authorization and phone, and when they were last seen; a door left without anyone
    authorized raises a repair issue.
    """
    runtime = entry.runtime_data
    person = await runtime.faces.async_delete(name)
    async_forget_person(hass, entry, runtime.door, person.person_id)
    runtime.last_seen.async_forget(person.person_id)
    return person


async def _delete_person(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass)
    try:
        person = await async_delete_person(call.hass, entry, call.data[ATTR_NAME])
    except PeopleError as err:
        raise service_error(err.key, **err.placeholders) from err
    return {"deleted": person.name}


async def _list_people(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass)
    people: list[Any] = entry.runtime_data.faces.list_people()
    return {"people": people}


async def _scan(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass)
    configured: list[str] = entry.options.get(CONF_CAMERAS, [])
    cameras: list[str] = call.data.get(ATTR_ENTITY_ID) or configured
    if not cameras:
        raise service_error("no_cameras")
    if unknown := [camera for camera in cameras if camera not in configured]:
        raise service_error("camera_not_configured", camera=", ".join(unknown))
    reports = await asyncio.gather(*(entry.runtime_data.faces.async_scan(c) for c in cameras))
    results: dict[str, Any] = {}
    for report in reports:
        results[report.camera] = {"faces": report.faces(distances=True), "error": report.error}
    return {"cameras": results}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's services (all but list_people for admins only)."""
    for name, handler, schema in (
        (SERVICE_ENROLL_FACE, _enroll_face, ENROLL_FACE_SCHEMA),
        (SERVICE_ENROLL_NEGATIVE, _enroll_negative, ENROLL_SCHEMA),
        (SERVICE_DELETE_PERSON, _delete_person, DELETE_SCHEMA),
        (SERVICE_SCAN, _scan, SCAN_SCHEMA),
    ):
        async_register_admin_service(hass, DOMAIN, name, handler, schema, SupportsResponse.OPTIONAL)
    hass.services.async_register(
        DOMAIN, SERVICE_LIST_PEOPLE, _list_people, vol.Schema({}), SupportsResponse.ONLY
    )

"""Logbook lines for Compact AI's bus events: door decisions, recognized faces, voice commands.

Home Assistant asks this platform to word an event when the logbook shows it, so old lines
follow a later change of language. The answer is plain text and the logbook does not say which
user is looking (as of Home Assistant 2026.2 and 2026.10), so the lines are in Home
Assistant's language (Settings → System → General), not each user's profile language. The
event entities' own logbook lines are the frontend's: from 2026.10 on they show the translated
event type (for example "Unlock denied") in each user's language; 2026.2 shows "detected an
event" there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_DOOR_DECISION, EVENT_FACES_RECOGNIZED, EVENT_VOICE_COMMAND
from .helpers.texts import text

Describe = Callable[[Event], dict[str, str]]


def _camera_name(hass: HomeAssistant, camera: str) -> str:
    state = hass.states.get(camera)
    return state.name if state else camera


def _reason(hass: HomeAssistant, reason: str) -> str:
    return text(hass, "entity", f"event.door.state_attributes.reason.state.{reason}")


def describe_door(hass: HomeAssistant, event: Event) -> dict[str, str]:
    """Word one door decision: who, on which camera, and why it was denied."""
    data = event.data
    camera = _camera_name(hass, data["camera"])
    if data["granted"]:
        message = text(hass, "common", "logbook_door_granted", person=data["person"], camera=camera)
    elif data.get("person"):
        message = text(
            hass,
            "common",
            "logbook_door_denied",
            person=data["person"],
            camera=camera,
            reason=_reason(hass, data["reason"]),
        )
    else:
        message = text(
            hass,
            "common",
            "logbook_door_denied_unknown",
            camera=camera,
            reason=_reason(hass, data["reason"]),
        )
    if folded := int(data.get("folded", 0)):
        key = "logbook_door_folded_one" if folded == 1 else "logbook_door_folded_other"
        message = text(
            hass, "common", key, message=message, count=folded, seconds=f"{data['window']:g}"
        )
    return {"name": _camera_name(hass, data["entity_id"]), "message": message, **_entity(data)}


def describe_faces(hass: HomeAssistant, event: Event) -> dict[str, str]:
    """Word the people one scan recognized."""
    data = event.data
    people = data["people"][0]
    for person in data["people"][1:]:
        people = text(hass, "common", "logbook_list_item", list=people, item=person)
    message = text(hass, "common", "logbook_faces_recognized", people=people)
    return {"name": _camera_name(hass, data["camera"]), "message": message, **_entity(data)}


def describe_voice(hass: HomeAssistant, event: Event) -> dict[str, str]:
    """Word one recognized voice command."""
    data = event.data
    message = text(hass, "common", "logbook_voice_command", phrase=data["phrase"])
    return {"name": _camera_name(hass, data["entity_id"]), "message": message, **_entity(data)}


def _entity(data: Mapping[str, Any]) -> dict[str, str]:
    return {"entity_id": data["entity_id"]} if data.get("entity_id") else {}


@callback
def async_describe_events(
    hass: HomeAssistant, async_describe_event: Callable[[str, str, Describe], None]
) -> None:
    """Tell the logbook how to word our events."""
    describers: dict[str, Callable[[HomeAssistant, Event], dict[str, str]]] = {
        EVENT_DOOR_DECISION: describe_door,
        EVENT_FACES_RECOGNIZED: describe_faces,
        EVENT_VOICE_COMMAND: describe_voice,
    }
    for event_type, describe in describers.items():
        async_describe_event(DOMAIN, event_type, partial(describe, hass))

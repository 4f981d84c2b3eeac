"""Event entities: faces recognized on each camera, door unlock decisions, voice commands."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_CAMERAS, EVENT_FACES_RECOGNIZED, EVENT_VOICE_COMMAND
from .data import CompactAIConfigEntry
from .door import EVENT_DENIED, EVENT_GRANTED
from .engine.face.gallery import MatchStatus
from .entity import CameraScanEntity, CompactAIEntity, camera_device, service_device
from .face.manager import ScanReport
from .reconfigure import door_signal
from .voice.manager import VoiceResult

# Events are pushed; nothing is polled.
PARALLEL_UPDATES = 0
EVENT_RECOGNIZED = "recognized"
EVENT_UNKNOWN = "unknown"

FACE_EVENT = EventEntityDescription(
    key="face", translation_key="face", event_types=[EVENT_RECOGNIZED, EVENT_UNKNOWN]
)
DOOR_EVENT = EventEntityDescription(
    key="door", translation_key="door", event_types=[EVENT_GRANTED, EVENT_DENIED]
)
VOICE_EVENT = EventEntityDescription(
    key="voice_command",
    translation_key="voice_command",
    event_types=[EVENT_RECOGNIZED, EVENT_UNKNOWN],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CompactAIConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a face event per camera, the voice command event and, if set up, the door event."""
    entities: list[EventEntity] = [
        FaceEvent(entry, FACE_EVENT, camera_device(hass, entry, camera), camera)
        for camera in entry.options.get(CONF_CAMERAS, [])
    ]
    entities.append(VoiceEvent(entry, VOICE_EVENT, service_device(entry)))
    async_add_entities(entities)

    @callback
    def door_turned_on() -> None:
        if entry.runtime_data.door is not None:
            async_add_entities([DoorEvent(entry, DOOR_EVENT, service_device(entry))])

    door_turned_on()
    entry.async_on_unload(async_dispatcher_connect(hass, door_signal(entry), door_turned_on))


class FaceEvent(CameraScanEntity, EventEntity):
    """Fires ``recognized`` or ``unknown`` for every face a scan of the camera finds."""

    @callback
    def _on_report(self, report: ScanReport) -> None:
        if report.scan is None:
            return
        people: list[str] = []
        for face in report.faces():
            known = face["status"] == MatchStatus.MATCH
            self._trigger_event(EVENT_RECOGNIZED if known else EVENT_UNKNOWN, face)
            if known and face.get("person"):
                people.append(str(face["person"]))
        if report.scan.recognitions:
            self.async_write_ha_state()
        if people:  # a logbook line (logbook.py) for the people recognized in this frame
            self.hass.bus.async_fire(
                EVENT_FACES_RECOGNIZED,
                {"entity_id": self.entity_id, "camera": self._camera, "people": people},
            )


class DoorEvent(CompactAIEntity, EventEntity):
    """Fires ``unlock_granted`` or ``unlock_denied`` with the person, reason and scores.

    It exists while the door is on: turning the door off in the options removes it.
    """

    async def async_added_to_hass(self) -> None:
        """Subscribe to door decisions, and to the door being turned off."""
        door = self._entry.runtime_data.door
        assert door is not None
        self.async_on_remove(door.async_add_listener(self._on_decision))
        self.async_on_remove(
            async_dispatcher_connect(self.hass, door_signal(self._entry), self._on_door_change)
        )

    @callback
    def _on_door_change(self) -> None:
        if self._entry.runtime_data.door is None:  # gone, not unavailable: the door is off
            self.hass.async_create_task(self.async_remove(force_remove=True), eager_start=True)

    @callback
    def _on_decision(self, event_type: str, data: dict[str, Any]) -> None:
        self._trigger_event(event_type, data)
        self.async_write_ha_state()


class VoiceEvent(CompactAIEntity, EventEntity):
    """Fires ``recognized`` (phrase, confidence) or ``unknown`` (speech that is no command)."""

    @property
    def available(self) -> bool:
        """Available while the speech models and command set are usable."""
        return self._entry.runtime_data.voice.available

    async def async_added_to_hass(self) -> None:
        """Subscribe to recognitions."""
        self.async_on_remove(self._entry.runtime_data.voice.async_add_listener(self._on_result))

    @callback
    def _on_result(self, result: VoiceResult) -> None:
        if result.phrase is not None:
            data = {"phrase": result.phrase, "confidence": round(result.confidence, 3)}
            self._trigger_event(EVENT_RECOGNIZED, data)
            self.hass.bus.async_fire(EVENT_VOICE_COMMAND, {"entity_id": self.entity_id, **data})
        elif result.speech:
            self._trigger_event(EVENT_UNKNOWN, {"confidence": round(result.confidence, 3)})
        else:
            return
        self.async_write_ha_state()

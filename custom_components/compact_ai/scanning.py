"""When the cameras are scanned: a burst of scans per trigger, and an interval while on.

One trigger (a doorbell press, motion) starts TRIGGER_SCANS scans TRIGGER_SPACING apart:
the door needs at least two matching frames within its window (default 2 of 3 within 5 s)
and its liveness check needs the head to move between them, which one scan per press
never gives. The interval scans only cameras that are on: a camera that is off or
unavailable gives no snapshot, only a warning in the log each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import (
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import CALLBACK_TYPE, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)

from .const import CONF_CAMERAS, CONF_SCAN_INTERVAL, CONF_TRIGGERS
from .face.manager import FaceManager

TRIGGER_SCANS: Final = 5
TRIGGER_SPACING: Final = 1.0  # seconds: 5 frames over 4 s, inside the door's 5 s window
# Set up without a trigger, the cameras are scanned this often (seconds): two consecutive
# scans then fall inside the door's default 5 s window with a second to spare for a slow
# snapshot (at 5 s they would sit on its edge). FaceRecognizer.scan of a 1920x1080 JPEG, balanced
# tier, took 116-118 ms (median of 15, ncnn and onnxruntime) on a 2-core PC: 3 % of one core.
DEFAULT_INTERVAL: Final = 4
_CAMERA_OFF: Final = frozenset({STATE_OFF, STATE_UNAVAILABLE, STATE_UNKNOWN})


def is_trigger(event: Event[EventStateChangedData]) -> bool:
    """Return whether a state change of a trigger entity should start a burst of scans.

    A binary sensor triggers when it turns on. An event entity (a doorbell) triggers when it
    fires: its state, the time of the last event, changes; coming back from unavailable (a
    reload restores the last event) is not a new press.
    """
    new, old = event.data["new_state"], event.data["old_state"]
    if new is None or new.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return False
    if new.domain == Platform.EVENT:
        return old is not None and old.state != STATE_UNAVAILABLE and old.state != new.state
    return new.state == STATE_ON and (old is None or old.state != STATE_ON)


class ScanSchedule:
    """Starts scans on triggers and at the interval; follows option changes without a reload."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, faces: FaceManager) -> None:
        """Scan nothing until :meth:`async_apply` is called."""
        self._hass = hass
        self._entry = entry
        self._faces = faces
        self._cameras: list[str] = []
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._burst_left = 0
        self._burst_timer: CALLBACK_TYPE | None = None

    @callback
    def async_apply(self, options: Mapping[str, Any]) -> None:
        """Follow the cameras, triggers and interval of ``options`` (a burst in flight ends)."""
        self.async_stop()
        self._cameras = list(options.get(CONF_CAMERAS, []))
        if not self._cameras:
            return
        if triggers := options.get(CONF_TRIGGERS, []):
            self._unsubscribe.append(
                async_track_state_change_event(self._hass, triggers, self._on_trigger)
            )
        if interval := int(options.get(CONF_SCAN_INTERVAL, 0)):
            self._unsubscribe.append(
                async_track_time_interval(
                    self._hass,
                    self._on_interval,
                    timedelta(seconds=interval),
                    cancel_on_shutdown=True,
                )
            )

    @callback
    def async_stop(self) -> None:
        """Stop listening and end a burst in flight."""
        while self._unsubscribe:
            self._unsubscribe.pop()()
        self._burst_left = 0
        if self._burst_timer is not None:
            self._burst_timer()
            self._burst_timer = None

    @callback
    def _scan(self, cameras: list[str]) -> None:
        for camera in cameras:
            self._entry.async_create_background_task(
                self._hass, self._faces.async_scan(camera), f"compact_ai scan {camera}"
            )

    @callback
    def _on_trigger(self, event: Event[EventStateChangedData]) -> None:
        if is_trigger(event):
            self._burst_left = TRIGGER_SCANS  # a press during a burst starts it over
            if self._burst_timer is None:
                self._next_in_burst()

    @callback
    def _next_in_burst(self, _now: Any = None) -> None:
        self._burst_timer = None
        self._burst_left -= 1
        self._scan(self._cameras)
        if self._burst_left:
            self._burst_timer = async_call_later(self._hass, TRIGGER_SPACING, self._next_in_burst)

    @callback
    def _on_interval(self, _now: Any) -> None:
        self._scan([camera for camera in self._cameras if camera_is_on(self._hass, camera)])


def camera_is_on(hass: HomeAssistant, camera: str) -> bool:
    """Return whether ``camera`` exists and is neither off nor unavailable."""
    state = hass.states.get(camera)
    return state is not None and state.state not in _CAMERA_OFF

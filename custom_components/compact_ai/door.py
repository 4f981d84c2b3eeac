"""The door: turns scan reports into unlock decisions, unlocks, and explains each decision."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from homeassistant.const import EVENT_LOGBOOK_ENTRY, STATE_HOME, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .const import (
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
    CONF_UNLOCK_CAMERAS,
    CONF_WINDOW_SECONDS,
    DEFAULT_UNLOCK,
    DOMAIN,
)
from .engine.gallery import MatchStatus
from .engine.unlock_policy import (
    Decision,
    FaceObservation,
    Frame,
    Reason,
    UnlockDecider,
    UnlockPolicy,
)
from .recognition import ScanReport

_LOGGER = logging.getLogger(__name__)

LOCK_FAILED = "lock_failed"
EVENT_GRANTED = "unlock_granted"
EVENT_DENIED = "unlock_denied"


def build_policy(options: dict[str, Any], threshold: float, strict: float) -> UnlockPolicy | None:
    """Return the unlock policy of the options, or ``None`` while unlocking is off."""
    unlock = {**DEFAULT_UNLOCK, **options}
    if not unlock[CONF_ENABLED] or not unlock.get(CONF_LOCK):
        return None
    return UnlockPolicy(
        cameras=frozenset(unlock.get(CONF_UNLOCK_CAMERAS, [])),
        authorized=frozenset(unlock.get(CONF_PEOPLE, [])),
        max_distance=strict if unlock[CONF_STRICT] else threshold,
        k=int(unlock[CONF_FRAMES_REQUIRED]),
        n=int(unlock[CONF_FRAMES_WINDOW]),
        window_s=float(unlock[CONF_WINDOW_SECONDS]),
        cooldown_s=float(unlock[CONF_COOLDOWN]),
        require_liveness=bool(unlock[CONF_LIVENESS]),
        require_presence=bool(unlock[CONF_REQUIRE_PRESENCE]),
    )


def frame_of(report: ScanReport, timestamp: float) -> Frame:
    """Turn a scan report into the policy's view of a frame."""
    faces: tuple[FaceObservation, ...] = ()
    if report.scan is not None:
        faces = tuple(
            FaceObservation(
                person=r.match.person if r.match.status is MatchStatus.MATCH else None,
                distance=float(r.match.distance),
                ambiguous=r.match.status is MatchStatus.AMBIGUOUS,
                keypoints=np.asarray(r.face.detection.keypoints, dtype=np.float64),
            )
            for r in report.scan.recognitions
        )
    return Frame(camera=report.camera, timestamp=timestamp, faces=faces)


@dataclass(slots=True)
class DoorController:
    """Decides on every scan of an unlock camera and opens the lock when granted."""

    hass: HomeAssistant
    lock: str
    policy: UnlockPolicy
    presence: dict[str, str]
    decider: UnlockDecider = field(init=False)
    _listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    _last_denial: tuple[str, str | None] | None = None

    def __post_init__(self) -> None:
        """Start a fresh decider for the policy."""
        self.decider = UnlockDecider(self.policy)

    @callback
    def async_add_listener(
        self, listener: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Call ``listener(event_type, data)`` for every door event; return the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _is_home(self, person: str) -> bool:
        entity = self.presence.get(person)
        state = self.hass.states.get(entity) if entity else None
        return state is not None and state.state == STATE_HOME

    async def async_handle(self, report: ScanReport) -> Decision | None:
        """Decide on one report; unlock, log and fire the door event as needed."""
        frame = frame_of(report, self.hass.loop.time())
        decision = self.decider.observe(frame, self._is_home)
        if decision is None or not decision.final:
            return decision
        if decision.granted:
            await self._unlock(decision)
            self._last_denial = None
            return decision
        key = (str(decision.reason), decision.person)
        if key != self._last_denial:  # one door event per attempt, not one per frame
            self._last_denial = key
            self._announce(EVENT_DENIED, str(decision.reason), decision)
        return decision

    async def _unlock(self, decision: Decision) -> None:
        state = self.hass.states.get(self.lock)
        if state is None or state.state == STATE_UNAVAILABLE:
            self._announce(EVENT_DENIED, LOCK_FAILED, decision, error="lock_unavailable")
            return
        try:
            await self.hass.services.async_call(
                "lock", "unlock", {"entity_id": self.lock}, blocking=True
            )
        except HomeAssistantError as err:
            _LOGGER.warning("Unlocking %s failed: %s", self.lock, err)
            self._announce(EVENT_DENIED, LOCK_FAILED, decision, error=str(err))
            return
        self._announce(EVENT_GRANTED, str(Reason.MATCHED), decision)

    def _announce(self, event_type: str, reason: str, decision: Decision, **extra: Any) -> None:
        data: dict[str, Any] = {
            "person": decision.person,
            "reason": reason,
            "camera": decision.camera,
            "scores": {key: round(value, 4) for key, value in decision.scores.items()},
            **extra,
        }
        verdict = "granted" if event_type == EVENT_GRANTED else "denied"
        who = decision.person or "an unknown face"
        self.hass.bus.async_fire(
            EVENT_LOGBOOK_ENTRY,
            {
                "name": "Compact AI door",
                "message": f"unlock {verdict} for {who} ({reason})",
                "domain": DOMAIN,
                "entity_id": self.lock,
            },
        )
        for listener in list(self._listeners):
            listener(event_type, data)


def door_from_options(
    hass: HomeAssistant, options: dict[str, Any], threshold: float, strict: float
) -> DoorController | None:
    """Return the door controller for the options, or ``None`` while unlocking is off."""
    policy = build_policy(options, threshold, strict)
    if policy is None:
        return None
    return DoorController(hass, options[CONF_LOCK], policy, dict(options.get(CONF_PRESENCE, {})))

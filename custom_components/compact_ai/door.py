"""The door: turns scan reports into unlock decisions, unlocks, and explains each decision.

Every decision (a grant, each denial, a lock that failed) becomes a door event and a logbook
line. Only identical consecutive denials within the policy's window are folded into one, and
the next event says how many were folded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field, replace
from typing import Any

import numpy as np
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_HOME, STATE_UNAVAILABLE
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

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
    CONF_UNLOCK,
    CONF_UNLOCK_CAMERAS,
    CONF_WINDOW_SECONDS,
    DEFAULT_UNLOCK,
    DOMAIN,
    EVENT_DOOR_DECISION,
)
from .engine.door.policy import (
    Decision,
    FaceObservation,
    Frame,
    Reason,
    UnlockDecider,
    UnlockPolicy,
)
from .engine.face.gallery import MatchStatus
from .face.manager import ScanReport

_LOGGER = logging.getLogger(__name__)
# Denials show counts and waiting times only: a distance or liveness score per try would let
# anyone who can read states tune a presentation attack step by step.
PUBLIC_DENIAL_SCORES = frozenset({"frames", "k", "cooldown_left", "backoff_left"})

LOCK_FAILED = "lock_failed"
ISSUE_NO_PEOPLE = "door_without_people"
EVENT_GRANTED = "unlock_granted"
EVENT_DENIED = "unlock_denied"


def build_policy(options: dict[str, Any], threshold: float, strict: float) -> UnlockPolicy | None:
    """Return the unlock policy of the options, or ``None`` while unlocking is off."""
    unlock = {**DEFAULT_UNLOCK, **options}
    if not unlock[CONF_ENABLED] or not unlock.get(CONF_LOCK):
        return None
    liveness = bool(unlock[CONF_LIVENESS])
    k, n = int(unlock[CONF_FRAMES_REQUIRED]), int(unlock[CONF_FRAMES_WINDOW])
    if liveness and k < 2:  # saved before the form refused it: stricter, never weaker
        _LOGGER.warning("Liveness compares two frames: requiring 2 matching frames, not %s", k)
        k, n = 2, max(n, 2)
    return UnlockPolicy(
        cameras=frozenset(unlock.get(CONF_UNLOCK_CAMERAS, [])),
        authorized=frozenset(unlock.get(CONF_PEOPLE, [])),
        max_distance=strict if unlock[CONF_STRICT] else threshold,
        k=k,
        n=n,
        window_s=float(unlock[CONF_WINDOW_SECONDS]),
        cooldown_s=float(unlock[CONF_COOLDOWN]),
        require_liveness=liveness,
        require_presence=bool(unlock[CONF_REQUIRE_PRESENCE]),
    )


def frame_of(report: ScanReport) -> Frame:
    """Turn a scan report into the policy's view of a frame (at its snapshot time)."""
    faces: tuple[FaceObservation, ...] = ()
    more_faces = False
    unconfirmed = 0
    if report.scan is not None:
        more_faces = report.scan.more_faces
        unconfirmed = report.scan.unconfirmed_faces
        faces = tuple(
            FaceObservation(
                person=r.match.person if r.match.status is MatchStatus.MATCH else None,
                distance=float(r.match.distance),
                ambiguous=r.match.status is MatchStatus.AMBIGUOUS,
                keypoints=np.asarray(r.face.detection.keypoints, dtype=np.float64),
            )
            for r in report.scan.recognitions
        )
    return Frame(report.camera, report.taken, faces, more_faces, unconfirmed)


@dataclass(slots=True)
class DoorController:
    """Decides on every scan of an unlock camera and opens the lock when granted."""

    hass: HomeAssistant
    lock: str
    policy: UnlockPolicy
    presence: dict[str, str]  # person id -> device tracker or person entity
    name_of: Callable[[str], str] = str  # person id -> display name
    waiting: Callable[[], list[str]] = list  # who must be enrolled again (names)
    kept: InitVar[UnlockDecider | None] = None  # an earlier door's: cooldown and back-off go on
    decider: UnlockDecider = field(init=False)
    _listeners: list[Callable[[str, dict[str, Any]], None]] = field(default_factory=list)
    _last_denial: tuple[str, str | None, str] | None = None
    _last_denial_at: float = 0.0
    _last_decision: Decision | None = None
    _folded: int = 0
    _flush_timer: CALLBACK_TYPE | None = None

    def __post_init__(self, kept: UnlockDecider | None) -> None:
        """Start a fresh decider for the policy, or go on with ``kept``."""
        self.decider = kept or UnlockDecider(self.policy)
        self.decider.change_policy(self.policy)

    @callback
    def async_add_listener(
        self, listener: Callable[[str, dict[str, Any]], None]
    ) -> Callable[[], None]:
        """Call ``listener(event_type, data)`` for every door event; return the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def forget(self, person_id: str) -> None:
        """Stop authorizing a deleted person at once (cooldown and back-off are kept)."""
        self.policy = replace(self.policy, authorized=self.policy.authorized - {person_id})
        self.decider.policy = self.policy
        self.presence.pop(person_id, None)

    @callback
    def reconfigure(self, lock: str, policy: UnlockPolicy, presence: dict[str, str]) -> None:
        """Take changed settings without a reload (cooldown and back-off are kept)."""
        self.async_flush()
        self.lock, self.policy, self.presence = lock, policy, presence
        self.decider.change_policy(policy)

    def _is_home(self, person: str) -> bool:
        entity = self.presence.get(person)
        state = self.hass.states.get(entity) if entity else None
        return state is not None and state.state == STATE_HOME

    async def async_handle(self, report: ScanReport) -> Decision | None:
        """Decide on one report; unlock, log and fire the door event as needed."""
        decision = self.decider.observe(frame_of(report), self._is_home, bool(self.waiting()))
        if decision is None or not decision.final:
            return decision
        key = (str(decision.reason), decision.person, decision.camera)
        if (
            not decision.granted
            and key == self._last_denial
            and report.taken - self._last_denial_at <= self.policy.window_s
        ):
            self._folded += 1  # the same attempt seen again: counted, told when the run ends
            if self._flush_timer is None:
                self._flush_timer = async_call_later(
                    self.hass, self.policy.window_s, self._flush_at_end_of_window
                )
            return decision
        self.async_flush()
        if decision.granted:
            self._last_denial = None
            await self._unlock(decision)
            return decision
        self._last_denial, self._last_denial_at = key, report.taken
        self._last_decision = decision
        self._announce(EVENT_DENIED, str(decision.reason), decision)
        return decision

    @callback
    def async_flush(self) -> None:
        """Tell the folded repeats of the last denial, on that denial's own event."""
        if self._flush_timer is not None:
            self._flush_timer()
            self._flush_timer = None
        folded, self._folded = self._folded, 0
        if folded and self._last_decision is not None:
            decision = self._last_decision
            self._announce(EVENT_DENIED, str(decision.reason), decision, folded=folded)

    @callback
    def _flush_at_end_of_window(self, _now: Any) -> None:
        self._flush_timer = None
        self.async_flush()

    async def _unlock(self, decision: Decision) -> None:
        state = self.hass.states.get(self.lock)
        if state is None or state.state == STATE_UNAVAILABLE:
            self._announce(EVENT_DENIED, LOCK_FAILED, decision, error="lock_unavailable")
            return
        try:
            await self.hass.services.async_call(
                "lock", "unlock", {"entity_id": self.lock}, blocking=True
            )
        except Exception as err:  # noqa: BLE001 - any failure of the lock is audited, any type
            _LOGGER.warning("Unlocking %s failed: %r", self.lock, err)
            self._announce(EVENT_DENIED, LOCK_FAILED, decision, error=repr(err))
            return
        self._announce(EVENT_GRANTED, str(Reason.MATCHED), decision)

    def _announce(
        self, event_type: str, reason: str, decision: Decision, folded: int = 0, **extra: Any
    ) -> None:
        scores = {
            key: round(value, 4)
            for key, value in decision.scores.items()
            if decision.granted or key in PUBLIC_DENIAL_SCORES
        }
        _LOGGER.debug("Door decision %s on %s: %s", reason, decision.camera, scores)
        name = self.name_of(decision.person) if decision.person else None
        data: dict[str, Any] = {
            "person": name,
            "reason": reason,
            "camera": decision.camera,
            "scores": scores,
            "folded": folded,
            **extra,
        }
        # Worded for the logbook, in the user's language, by logbook.py.
        self.hass.bus.async_fire(
            EVENT_DOOR_DECISION,
            {
                "entity_id": self.lock,
                "granted": event_type == EVENT_GRANTED,
                "person": name,
                "reason": reason,
                "camera": decision.camera,
                "folded": folded,
                "window": self.policy.window_s,
            },
        )
        for listener in list(self._listeners):
            listener(event_type, data)


def door_from_options(
    hass: HomeAssistant,
    options: dict[str, Any],
    threshold: float,
    strict: float,
    name_of: Callable[[str], str] = str,
    waiting: Callable[[], list[str]] = list,
    kept: UnlockDecider | None = None,
) -> DoorController | None:
    """Return the door controller for the options, or ``None`` while unlocking is off.

    ``kept`` is the decider of the entry's earlier door (turned off, or before a reload).
    """
    policy = build_policy(options, threshold, strict)
    if policy is None:
        return None
    presence = dict(options.get(CONF_PRESENCE, {}))
    return DoorController(hass, options[CONF_LOCK], policy, presence, name_of, waiting, kept)


def unlock_by_person_id(unlock: dict[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Return unlock options whose people and presence are keyed by person id.

    Older versions stored display names; a name maps to the person called exactly that, and
    entries naming nobody enrolled are dropped (they could never authorize anyone).
    """
    by_name = {name: person_id for person_id, name in names.items()}

    def person_id(key: str) -> str | None:
        return key if key in names else by_name.get(key)

    people = [pid for key in unlock.get(CONF_PEOPLE, []) if (pid := person_id(key))]
    presence = {
        pid: entity
        for key, entity in unlock.get(CONF_PRESENCE, {}).items()
        if (pid := person_id(key)) and pid in people
    }
    return {**unlock, CONF_PEOPLE: people, CONF_PRESENCE: presence}


@callback
def async_check_door_people(hass: HomeAssistant, unlock: dict[str, Any]) -> None:
    """Raise a repair issue while the door is on but nobody may open it."""
    if unlock.get(CONF_ENABLED) and unlock.get(CONF_LOCK) and not unlock.get(CONF_PEOPLE):
        ir.async_create_issue(
            hass,
            DOMAIN,
            ISSUE_NO_PEOPLE,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_NO_PEOPLE,
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_NO_PEOPLE)


@callback
def async_forget_person(
    hass: HomeAssistant, entry: ConfigEntry, door: DoorController | None, person_id: str
) -> None:
    """Remove a deleted person from the unlock options, presence mapping and running door."""
    unlock = dict(entry.options.get(CONF_UNLOCK, {}))
    if unlock:
        unlock[CONF_PEOPLE] = [pid for pid in unlock.get(CONF_PEOPLE, []) if pid != person_id]
        presence = unlock.get(CONF_PRESENCE, {})
        unlock[CONF_PRESENCE] = {pid: e for pid, e in presence.items() if pid != person_id}
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_UNLOCK: unlock}
        )
    if door is not None:
        door.forget(person_id)
    async_check_door_people(hass, unlock)

"""The door unlock policy: decide from a stream of recognized frames, never on doubt.

A door unlocks only when, on a camera allowed to unlock, the same authorized person was
matched within the strict distance in at least ``k`` of the last ``n`` frames (frames without
a face count too) inside ``window_s`` seconds, none of those frames held an unknown or
ambiguous face, the same person twice (a face beside its mirror image or a photo of it) or
more faces than the detector keeps, the face moved non-rigidly between frames taken at
different times (liveness), the person's phone is home when that second factor is required,
and neither the cooldown since the last unlock nor a back-off after repeated denials is
running. Every decision says why.

A frame contributes at most one observation per person, so ``k`` counts frames, never faces:
one frame cannot meet ``k`` = 2, and liveness never compares two faces of the same frame.

Liveness, honestly (``liveness.py``): any flat picture, however it is tilted or turned, maps
its keypoints from frame to frame by one homography; a live head does not (parallax). With
BlazeFace's six keypoints the detector's noise is as large as a head's parallax, so the
threshold that refuses every tilted print also refuses most real head motion: liveness keeps
photos out but mostly keeps the door shut. It does not stop a replayed video or a 3D mask.
The phone-presence factor is the recommended second check.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from .backoff import Backoff, BackoffRules
from .liveness import MIN_PARALLAX, planar_parallax


class Reason(StrEnum):
    """Why a decision was taken; translated and shown to the user by the HA layer."""

    MATCHED = "matched"
    WAITING_FOR_FRAMES = "waiting_for_frames"
    UNKNOWN_FACE = "unknown_face"
    AMBIGUOUS = "ambiguous"
    NOT_AUTHORIZED = "not_authorized"
    TOO_FAR = "distance_too_large"
    STATIC_FACE = "static_face"
    PRESENCE_MISSING = "presence_missing"
    COOLDOWN = "cooldown"
    SAME_PERSON_TWICE = "same_person_twice"
    TOO_MANY_FACES = "too_many_faces"
    BACKOFF = "backoff"
    # someone is enrolled under another face model: out of the gallery, they no longer make
    # a look-alike ambiguous, so the door opens for nobody until they are enrolled again
    REENROLL_PENDING = "reenroll_pending"


# Denials that say nothing about an attacker (time limits) do not lead to a back-off.
_NOT_COUNTED = frozenset({Reason.COOLDOWN, Reason.BACKOFF})
DOUBT = ""  # the back-off identity of frames that name nobody (unknown, ambiguous, crowded)


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One face of one frame, as recognition saw it."""

    person: str | None  # the person's id; None: unknown (or ambiguous) face
    distance: float
    ambiguous: bool
    keypoints: NDArray[np.float64]  # (K, 2) pixel positions, K >= 3


@dataclass(frozen=True, slots=True)
class Frame:
    """The faces of one scan of one camera; ``timestamp`` is when the snapshot was taken."""

    camera: str
    timestamp: float
    faces: tuple[FaceObservation, ...]
    more_faces: bool = False  # the detector found more faces than it keeps per frame
    unconfirmed_faces: int = 0  # faces seen that could not be recognized (not even as unknown)


@dataclass(frozen=True, slots=True)
class UnlockPolicy:
    """The user's unlock settings."""

    cameras: frozenset[str]
    authorized: frozenset[str]
    max_distance: float
    k: int = 2
    n: int = 3
    window_s: float = 5.0
    cooldown_s: float = 30.0
    require_liveness: bool = True
    min_parallax: float = MIN_PARALLAX  # homography residual / eye distance (liveness.py)
    require_presence: bool = False
    backoff: BackoffRules = field(default_factory=BackoffRules)

    def __post_init__(self) -> None:
        """Reject settings that could never work or would weaken the policy silently."""
        if not 1 <= self.k <= self.n:
            raise ValueError(f"k must be between 1 and n ({self.k} of {self.n})")
        if self.require_liveness and self.k < 2:
            raise ValueError("liveness compares two frames: k must be at least 2")
        if self.max_distance <= 0 or self.window_s <= 0 or self.cooldown_s < 0:
            raise ValueError("distance and window must be positive, cooldown not negative")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one frame: granted, denied, or still waiting for frames."""

    granted: bool
    reason: Reason
    camera: str
    person: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        """Whether this decision ends an attempt (everything but waiting)."""
        return self.reason is not Reason.WAITING_FOR_FRAMES


class UnlockDecider:
    """Keeps the recent frames of each camera and decides on every new one."""

    def __init__(self, policy: UnlockPolicy) -> None:
        """Start with no history, no cooldown and no back-off."""
        self.policy = policy
        self._frames: dict[str, deque[Frame]] = {}
        self._last_unlock: float | None = None
        self._backoff = Backoff(policy.backoff)

    def change_policy(self, policy: UnlockPolicy) -> None:
        """Decide by ``policy`` from now on.

        Frames seen under the old policy are dropped; the last unlock (cooldown) and the
        back-off stay, so changing the settings never lets anyone in sooner.
        """
        self.policy = policy
        self._frames.clear()

    def observe(
        self,
        frame: Frame,
        is_home: Callable[[str], bool] | None = None,
        reenroll_pending: bool = False,
    ) -> Decision | None:
        """Add a frame and decide; ``None`` when the frame is irrelevant to the door.

        A frame without a face still takes its place among the last ``n``. While
        ``reenroll_pending``, what would be a grant is denied (no cooldown, no back-off).
        """
        policy = self.policy
        if frame.camera not in policy.cameras:
            return None
        history = self._frames.setdefault(frame.camera, deque(maxlen=policy.n))
        history.append(frame)
        if not frame.faces and not frame.more_faces:
            return None
        recent = [f for f in history if frame.timestamp - f.timestamp <= policy.window_s]
        decision = self._decide(frame, recent, is_home)
        if not decision.final:
            return decision
        identity = decision.person or DOUBT
        left = self._backoff.remaining(identity, frame.timestamp)
        if left > 0:  # who it was stays in the audit; the outcome is the back-off
            return Decision(
                False, Reason.BACKOFF, frame.camera, decision.person, {"backoff_left": left}
            )
        if decision.granted and reenroll_pending:
            return Decision(False, Reason.REENROLL_PENDING, frame.camera, decision.person)
        if decision.granted:
            self._last_unlock = frame.timestamp
            self._frames.clear()
            self._backoff.forget(identity)
        elif decision.reason not in _NOT_COUNTED and self._backoff.deny(identity, frame.timestamp):
            self._frames.clear()
        return decision

    def _deny(
        self, frame: Frame, reason: Reason, person: str | None = None, **scores: float
    ) -> Decision:
        return Decision(False, reason, frame.camera, person, dict(scores))

    def _doubt(self, recent: Sequence[Frame]) -> Reason | None:
        """Return why the recent frames cannot be trusted at all, if they cannot."""
        for frame in recent:
            if frame.more_faces:
                return Reason.TOO_MANY_FACES
            if any(face.ambiguous for face in frame.faces):
                return Reason.AMBIGUOUS
            if frame.unconfirmed_faces or any(face.person is None for face in frame.faces):
                return Reason.UNKNOWN_FACE
            people = [face.person for face in frame.faces]
            if len(set(people)) < len(people):
                return Reason.SAME_PERSON_TWICE
        return None

    def _decide(
        self, frame: Frame, recent: Sequence[Frame], is_home: Callable[[str], bool] | None
    ) -> Decision:
        policy = self.policy
        if (doubt := self._doubt(recent)) is not None:
            return self._deny(frame, doubt)
        best = min(frame.faces, key=lambda face: face.distance)
        person = best.person
        if person not in policy.authorized:
            return self._deny(frame, Reason.NOT_AUTHORIZED, person, distance=best.distance)
        if best.distance > policy.max_distance:
            return self._deny(
                frame, Reason.TOO_FAR, person, distance=best.distance, limit=policy.max_distance
            )
        # One observation per frame (a frame never holds the same person twice here).
        matches = [
            (f.timestamp, face)
            for f in recent
            for face in f.faces
            if face.person == person and face.distance <= policy.max_distance
        ]
        scores = {"distance": best.distance, "frames": float(len(matches)), "k": float(policy.k)}
        if len(matches) < policy.k:
            return Decision(False, Reason.WAITING_FOR_FRAMES, frame.camera, person, scores)
        if policy.require_liveness:
            motion = max(
                (
                    planar_parallax(a.keypoints, b.keypoints)
                    for i, (time_a, a) in enumerate(matches)
                    for time_b, b in matches[i + 1 :]
                    if time_a != time_b
                ),
                default=0.0,
            )
            scores["motion"] = motion
            if motion < policy.min_parallax:
                return self._deny(frame, Reason.STATIC_FACE, person, **scores)
        if policy.require_presence and (is_home is None or not is_home(person)):
            return self._deny(frame, Reason.PRESENCE_MISSING, person, **scores)
        if self._last_unlock is not None and (
            frame.timestamp - self._last_unlock < policy.cooldown_s
        ):
            scores["cooldown_left"] = policy.cooldown_s - (frame.timestamp - self._last_unlock)
            return self._deny(frame, Reason.COOLDOWN, person, **scores)
        return Decision(True, Reason.MATCHED, frame.camera, person, scores)

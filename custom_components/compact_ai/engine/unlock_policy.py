"""The door unlock policy: decide from a stream of recognized frames, never on doubt.

A door unlocks only when, on a camera allowed to unlock, the same authorized person was
matched within the strict distance in at least ``k`` of the last ``n`` frames inside
``window_s`` seconds, no unknown or ambiguous face appeared in those frames, the face
moved non-rigidly between them (liveness), the person's phone is home when that second
factor is required, and the cooldown since the last unlock has passed. Every decision says
why.

Liveness, honestly: a flat photo moves rigidly (shift, turn, zoom in the image plane), so
its keypoints are explained by one similarity transform from frame to frame; a live head
turns and its nose, eyes and ears shift against each other (parallax). The check measures
that non-rigid residual. It stops a printed photo or a still screen held to the camera; it
does not stop a video of the person replayed on a screen, a photo bent while moving, or a
3D mask. Use the phone-presence factor where that matters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray

from .liveness import MIN_PARALLAX, planar_parallax, similarity_residual


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


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One face of one frame, as recognition saw it."""

    person: str | None  # None: unknown (or ambiguous) face
    distance: float
    ambiguous: bool
    keypoints: NDArray[np.float64]  # (K, 2) pixel positions, K >= 3


@dataclass(frozen=True, slots=True)
class Frame:
    """The faces of one scan of one camera."""

    camera: str
    timestamp: float
    faces: tuple[FaceObservation, ...]


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
    min_nonrigid_motion: float = MIN_PARALLAX  # homography residual / eye distance (liveness.py)
    require_presence: bool = False

    def __post_init__(self) -> None:
        """Reject settings that could never work or would weaken the policy silently."""
        if not 1 <= self.k <= self.n:
            raise ValueError(f"k must be between 1 and n ({self.k} of {self.n})")
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


nonrigid_motion = similarity_residual  # the former liveness score, kept by name


class UnlockDecider:
    """Keeps the recent frames of each camera and decides on every new one."""

    def __init__(self, policy: UnlockPolicy) -> None:
        """Start with no history and no cooldown."""
        self.policy = policy
        self._frames: dict[str, deque[Frame]] = {}
        self._last_unlock: float | None = None

    def observe(
        self, frame: Frame, is_home: Callable[[str], bool] | None = None
    ) -> Decision | None:
        """Add a frame and decide; ``None`` when the frame is irrelevant to the door."""
        policy = self.policy
        if frame.camera not in policy.cameras or not frame.faces:
            return None
        history = self._frames.setdefault(frame.camera, deque(maxlen=policy.n))
        history.append(frame)
        recent = [f for f in history if frame.timestamp - f.timestamp <= policy.window_s]
        return self._decide(frame, recent, is_home)

    def _deny(
        self, frame: Frame, reason: Reason, person: str | None = None, **scores: float
    ) -> Decision:
        return Decision(False, reason, frame.camera, person, dict(scores))

    def _decide(
        self, frame: Frame, recent: Sequence[Frame], is_home: Callable[[str], bool] | None
    ) -> Decision:
        policy = self.policy
        faces = [face for f in recent for face in f.faces]
        if any(face.ambiguous for face in faces):
            return self._deny(frame, Reason.AMBIGUOUS)
        if any(face.person is None for face in faces):
            return self._deny(frame, Reason.UNKNOWN_FACE)
        best = min(frame.faces, key=lambda face: face.distance)
        person = best.person
        if person not in policy.authorized:
            return self._deny(frame, Reason.NOT_AUTHORIZED, person, distance=best.distance)
        if best.distance > policy.max_distance:
            return self._deny(
                frame, Reason.TOO_FAR, person, distance=best.distance, limit=policy.max_distance
            )
        matches = [
            face
            for f in recent
            for face in f.faces
            if face.person == person and face.distance <= policy.max_distance
        ]
        scores = {"distance": best.distance, "frames": float(len(matches)), "k": float(policy.k)}
        if len(matches) < policy.k:
            return Decision(False, Reason.WAITING_FOR_FRAMES, frame.camera, person, scores)
        if policy.require_liveness:
            motion = max(
                planar_parallax(a.keypoints, b.keypoints)
                for i, a in enumerate(matches)
                for b in matches[i + 1 :]
            )
            scores["motion"] = motion
            if motion < policy.min_nonrigid_motion:
                return self._deny(frame, Reason.STATIC_FACE, person, **scores)
        if policy.require_presence and (is_home is None or not is_home(person)):
            return self._deny(frame, Reason.PRESENCE_MISSING, person, **scores)
        if self._last_unlock is not None and (
            frame.timestamp - self._last_unlock < policy.cooldown_s
        ):
            scores["cooldown_left"] = policy.cooldown_s - (frame.timestamp - self._last_unlock)
            return self._deny(frame, Reason.COOLDOWN, person, **scores)
        self._last_unlock = frame.timestamp
        self._frames.clear()
        return Decision(True, Reason.MATCHED, frame.camera, person, scores)

"""Open-set face matching against enrolled people (pure numpy, deterministic).

Each person has several embeddings; a probe's distance to a person is the smallest Euclidean
distance to any of them. The answer is a match only when the closest person is within the
model's threshold, no other person is within ``margin`` of that distance (else "ambiguous"),
and the probe is not closer to one of that person's negative embeddings (faces that must never
match them, e.g. a look-alike relative) than to the person (else that person is blocked).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np

DLIB_THRESHOLD: Final = 0.6  # dlib's same-person Euclidean distance for its ResNet embedder
DEFAULT_MARGIN: Final = 0.04  # at dlib's scale; see margin_for


def margin_for(threshold: float) -> float:
    """Return the ambiguity margin for an embedder whose naming threshold is ``threshold``.

    SFace's cosine distances run about 1.7x dlib's Euclidean ones (same person 0.81 vs 0.45,
    different people 1.35 vs 0.81 on LFW): a fixed 0.04 would catch look-alikes half as well
    there. The margin grows with the scale and is never below dlib's 0.04.
    """
    return DEFAULT_MARGIN * max(1.0, threshold / DLIB_THRESHOLD)


class MatchStatus(StrEnum):
    """Outcome of matching one probe."""

    MATCH = "match"
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One enrolled person's distance to the probe."""

    person: str
    distance: float
    blocked: bool  # the probe is closer to one of this person's negatives


@dataclass(frozen=True, slots=True)
class Match:
    """The answer for one probe; ``person`` is set only when ``status`` is MATCH."""

    status: MatchStatus
    person: str | None
    distance: float  # the closest unblocked person's distance (inf if none)
    candidates: tuple[Candidate, ...]  # every person, closest first


def _as_vector(embedding: np.ndarray) -> np.ndarray:
    vector = np.asarray(embedding, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(vector)):
        raise ValueError("an embedding must be finite")
    return vector


def _min_distance(probe: np.ndarray, rows: list[np.ndarray]) -> float:
    if not rows:
        return float("inf")
    return float(np.min(np.linalg.norm(np.stack(rows) - probe, axis=1)))


class Gallery:
    """Enrolled people, each with embeddings and negatives, and the matching rule."""

    def __init__(self, threshold: float = DLIB_THRESHOLD, margin: float = DEFAULT_MARGIN) -> None:
        """Match within ``threshold``; call it ambiguous when two people are within ``margin``."""
        self.threshold = threshold
        self.margin = margin
        self._embeddings: dict[str, list[np.ndarray]] = {}
        self._negatives: dict[str | None, list[np.ndarray]] = {}

    @property
    def people(self) -> tuple[str, ...]:
        """Return the enrolled people, sorted."""
        return tuple(sorted(self._embeddings))

    def add(self, person: str, embedding: np.ndarray) -> None:
        """Enroll one more embedding of ``person``."""
        self._embeddings.setdefault(person, []).append(_as_vector(embedding))

    def add_negative(self, embedding: np.ndarray, person: str | None = None) -> None:
        """Add a face that must never match ``person`` (``None``: must never match anyone)."""
        self._negatives.setdefault(person, []).append(_as_vector(embedding))

    def remove(self, person: str) -> None:
        """Forget ``person``'s embeddings and negatives."""
        self._embeddings.pop(person, None)
        self._negatives.pop(person, None)

    def count(self, person: str) -> int:
        """Return how many embeddings ``person`` has."""
        return len(self._embeddings.get(person, []))

    def match(self, embedding: np.ndarray) -> Match:
        """Match one probe embedding against every enrolled person."""
        probe = _as_vector(embedding)
        everyone = self._negatives.get(None, [])
        candidates = []
        for person, rows in self._embeddings.items():
            distance = _min_distance(probe, rows)
            negative = _min_distance(probe, [*self._negatives.get(person, []), *everyone])
            candidates.append(Candidate(person, distance, blocked=negative < distance))
        candidates.sort(key=lambda c: (c.distance, c.person))
        eligible = [c for c in candidates if not c.blocked]
        if not eligible or eligible[0].distance > self.threshold:
            distance = eligible[0].distance if eligible else float("inf")
            return Match(MatchStatus.UNKNOWN, None, distance, tuple(candidates))
        best = eligible[0]
        rivals = [c for c in candidates if c.person != best.person]
        if rivals and rivals[0].distance - best.distance < self.margin:
            return Match(MatchStatus.AMBIGUOUS, None, best.distance, tuple(candidates))
        return Match(MatchStatus.MATCH, best.person, best.distance, tuple(candidates))

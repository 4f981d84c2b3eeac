"""Check a tier on the enrolled people's own faces: leave one out at the door distance.

The dev set's numbers say how a tier does on strangers' photos; this says how it does on
this household. Each enrolled face is matched, as a probe, against every other enrolled
face: it counts as recognized when the tier's door rule (unlock distance, ambiguity margin)
names its own person. The closest other person shows how much room the door distance
leaves: a look-alike relative shows up as a ratio near or below 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .gallery import Gallery, MatchStatus


@dataclass(frozen=True, slots=True)
class HouseholdCheck:
    """What the leave-one-out check found for one tier."""

    faces: int  # enrolled faces probed (of people with at least two)
    recognized: int  # of those, matched to their own person at the door distance
    nearest_other: float  # smallest distance between faces of two different people
    door_distance: float

    @property
    def nearest_ratio(self) -> float:
        """The closest other person's distance over the door distance (above 1: outside it)."""
        return self.nearest_other / self.door_distance


def check_household(
    people: Sequence[tuple[str, np.ndarray]], door_distance: float, margin: float
) -> HouseholdCheck:
    """Leave-one-out over ``people`` (person id, embeddings (N, D)) at ``door_distance``.

    Only people with two faces or more are probed (one face left out leaves nothing of
    them to match); every face takes part in the gallery and in the closest-other distance.
    """
    faces = [(person, row) for person, rows in people for row in np.asarray(rows, np.float64)]
    nearest = float("inf")
    probed = recognized = 0
    counts: dict[str, int] = {}
    for person, _ in faces:
        counts[person] = counts.get(person, 0) + 1
    for index, (person, probe) in enumerate(faces):
        others = [row for who, row in faces if who != person]
        if others:
            nearest = min(nearest, float(np.min(np.linalg.norm(np.stack(others) - probe, axis=1))))
        if counts[person] < 2:
            continue
        gallery = Gallery(door_distance, margin)
        for other, (who, row) in enumerate(faces):
            if other != index:
                gallery.add(who, row)
        match = gallery.match(probe)
        probed += 1
        recognized += match.status is MatchStatus.MATCH and match.person == person
    return HouseholdCheck(probed, recognized, nearest, door_distance)

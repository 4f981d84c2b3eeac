"""The household check: leave-one-out of the enrolled faces at a tier's door distance."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.compact_ai.engine.face.household import check_household


def _faces(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def test_each_face_is_matched_against_the_others() -> None:
    people = [
        ("alice", _faces((0.0, 0.0), (0.3, 0.0), (0.0, 0.3))),
        ("bob", _faces((3.0, 0.0), (3.0, 0.9))),  # bob's two photos are 0.9 apart
        ("carol", _faces((0.0, 5.0))),  # one face: in the gallery, never probed
    ]
    check = check_household(people, door_distance=0.5, margin=0.04)
    assert check.faces == 5
    assert check.recognized == 3  # alice's three; bob's photos are beyond the door distance
    assert check.nearest_other == pytest.approx(np.hypot(2.7, 0.0))  # alice (0.3, 0) to bob
    assert check.nearest_ratio == pytest.approx(2.7 / 0.5)
    looser = check_household(people, door_distance=1.0, margin=0.04)
    assert looser.recognized == 5


def test_a_look_alike_shows_as_a_close_other_person_and_is_not_recognized() -> None:
    people = [
        ("twin_a", _faces((0.0, 0.0), (0.1, 0.0))),
        ("twin_b", _faces((0.12, 0.0), (0.2, 0.0))),
    ]
    check = check_household(people, door_distance=0.5, margin=0.04)
    assert check.nearest_other == pytest.approx(0.02)
    assert check.nearest_ratio < 1
    assert check.recognized < check.faces  # ambiguous or the wrong twin


def test_nobody_to_compare() -> None:
    check = check_household([("alice", _faces((0.0, 0.0)))], door_distance=0.5, margin=0.04)
    assert (check.faces, check.recognized, check.nearest_other) == (0, 0, float("inf"))
    assert check_household([], door_distance=0.5, margin=0.04).faces == 0

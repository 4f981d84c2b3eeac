"""The unlock policy: k-of-n, unknown faces, ambiguity, liveness, presence, cooldown."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.compact_ai.engine.door.backoff import BackoffRules
from custom_components.compact_ai.engine.door.liveness import MIN_PARALLAX, similarity_residual
from custom_components.compact_ai.engine.door.policy import (
    Decision,
    FaceObservation,
    Frame,
    Reason,
    UnlockDecider,
    UnlockPolicy,
)

from .head_model import HEAD, project

# BlazeFace order: right eye, left eye, nose, mouth, right ear, left ear (pixels).
FACE = np.array([[80, 90], [120, 90], [100, 112], [100, 130], [62, 100], [138, 100]], float)


def turned(amount: float) -> np.ndarray:
    """Keypoints of a 3-D head turned and nodded by ``amount`` * 200 degrees (exact parallax)."""
    return project(HEAD, 200 * amount, 200 * amount)


def similar(
    points: np.ndarray, scale: float, angle: float, shift: tuple[float, float]
) -> np.ndarray:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * points @ rotation.T + np.array(shift)


def policy(**changes: object) -> UnlockPolicy:
    settings: dict[str, object] = {
        "cameras": frozenset({"camera.door"}),
        "authorized": frozenset({"alice"}),
        "max_distance": 0.45,
    }
    settings.update(changes)
    return UnlockPolicy(**settings)  # type: ignore[arg-type]


def frame(t: float, *faces: FaceObservation, camera: str = "camera.door") -> Frame:
    return Frame(camera=camera, timestamp=t, faces=faces)


def alice(points: np.ndarray = FACE, distance: float = 0.3) -> FaceObservation:
    return FaceObservation("alice", distance, False, points)


def test_grants_after_two_live_frames() -> None:
    decider = UnlockDecider(policy())
    first = decider.observe(frame(0.0, alice(turned(0.0))))
    assert first is not None and first.reason is Reason.WAITING_FOR_FRAMES and not first.final
    second = decider.observe(frame(1.0, alice(turned(0.15))))
    assert second == Decision(True, Reason.MATCHED, "camera.door", "alice", second.scores)
    assert second.scores["frames"] == 2 and second.scores["motion"] > MIN_PARALLAX


def test_static_photo_is_denied_even_when_moved_rigidly() -> None:
    decider = UnlockDecider(policy())
    decider.observe(frame(0.0, alice(FACE)))
    moved = similar(FACE, 1.2, 0.2, (30.0, -12.0))  # the photo shifted, turned and brought closer
    decision = decider.observe(frame(1.0, alice(moved)))
    assert decision is not None and decision.reason is Reason.STATIC_FACE
    assert not decision.granted


def test_unknown_face_in_the_window_denies() -> None:
    decider = UnlockDecider(policy())
    stranger = FaceObservation(None, 0.8, False, turned(0.3))
    decider.observe(frame(0.0, alice(turned(0.0)), stranger))
    decision = decider.observe(frame(1.0, alice(turned(0.2))))
    assert decision is not None and decision.reason is Reason.UNKNOWN_FACE


def test_ambiguous_denies() -> None:
    decider = UnlockDecider(policy())
    decision = decider.observe(frame(0.0, FaceObservation("alice", 0.3, True, FACE)))
    assert decision is not None and decision.reason is Reason.AMBIGUOUS and decision.final


def test_person_not_authorized() -> None:
    decider = UnlockDecider(policy())
    decision = decider.observe(frame(0.0, FaceObservation("bob", 0.2, False, FACE)))
    assert decision is not None and decision.reason is Reason.NOT_AUTHORIZED
    assert decision.person == "bob"


def test_distance_above_strict_threshold() -> None:
    decider = UnlockDecider(policy(max_distance=0.35))
    decision = decider.observe(frame(0.0, alice(distance=0.4)))
    assert decision is not None and decision.reason is Reason.TOO_FAR
    assert decision.scores == {"distance": 0.4, "limit": 0.35}


def test_frames_outside_the_window_do_not_count() -> None:
    decider = UnlockDecider(policy(window_s=5.0))
    decider.observe(frame(0.0, alice(turned(0.0))))
    decision = decider.observe(frame(6.0, alice(turned(0.2))))
    assert decision is not None and decision.reason is Reason.WAITING_FOR_FRAMES


def test_other_cameras_and_empty_frames_are_ignored() -> None:
    decider = UnlockDecider(policy())
    assert decider.observe(frame(0.0, alice(), camera="camera.garden")) is None
    assert decider.observe(frame(0.0)) is None


def test_cooldown_after_unlock() -> None:
    decider = UnlockDecider(policy(cooldown_s=30.0))
    decider.observe(frame(0.0, alice(turned(0.0))))
    assert decider.observe(frame(1.0, alice(turned(0.2)))).granted  # type: ignore[union-attr]
    decider.observe(frame(2.0, alice(turned(0.0))))
    decision = decider.observe(frame(3.0, alice(turned(0.2))))
    assert decision is not None and decision.reason is Reason.COOLDOWN
    assert decision.scores["cooldown_left"] == pytest.approx(28.0)
    decider.observe(frame(40.0, alice(turned(0.0))))
    assert decider.observe(frame(41.0, alice(turned(0.2)))).granted  # type: ignore[union-attr]


def test_presence_second_factor() -> None:
    decider = UnlockDecider(policy(require_presence=True))
    decider.observe(frame(0.0, alice(turned(0.0))), is_home=lambda person: False)
    decision = decider.observe(frame(1.0, alice(turned(0.2))), is_home=lambda person: False)
    assert decision is not None and decision.reason is Reason.PRESENCE_MISSING
    decision = decider.observe(frame(2.0, alice(turned(0.0))), is_home=lambda p: p == "alice")
    assert decision is not None and decision.granted


def test_liveness_can_be_disabled() -> None:
    decider = UnlockDecider(policy(require_liveness=False))
    decider.observe(frame(0.0, alice(FACE)))
    decision = decider.observe(frame(1.0, alice(FACE)))
    assert decision is not None and decision.granted and "motion" not in decision.scores


@pytest.mark.parametrize(("k", "n"), [(0, 3), (4, 3)])
def test_invalid_k_of_n(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="k must be"):
        policy(k=k, n=n)


def test_invalid_distance() -> None:
    with pytest.raises(ValueError, match="positive"):
        policy(max_distance=0.0)


def test_similarity_residual_is_zero_for_similar_keypoints() -> None:
    assert similarity_residual(FACE, similar(FACE, 0.7, -0.4, (5.0, 9.0))) == pytest.approx(
        0.0, abs=1e-9
    )
    assert similarity_residual(FACE, turned(0.2)) > 0.05
    degenerate = np.zeros((6, 2))
    assert similarity_residual(degenerate, FACE) == 0.0


def test_ambiguous_face_without_a_person_is_ambiguous_not_unknown() -> None:
    decider = UnlockDecider(policy())
    decision = decider.observe(frame(0.0, FaceObservation(None, 0.3, True, FACE)))
    assert decision is not None and decision.reason is Reason.AMBIGUOUS


def test_same_person_twice_in_one_frame_denies() -> None:
    """A face and its mirror image (or a photo beside a screen) is not two frames."""
    decider = UnlockDecider(policy())
    decision = decider.observe(frame(0.0, alice(turned(0.0)), alice(turned(0.3))))
    assert decision is not None and not decision.granted
    assert decision.reason is Reason.SAME_PERSON_TWICE and decision.final


def test_liveness_is_measured_only_between_frames_at_different_times() -> None:
    decider = UnlockDecider(policy())
    decider.observe(frame(1.0, alice(turned(0.0))))
    decision = decider.observe(frame(1.0, alice(turned(0.3))))
    assert decision is not None and decision.reason is Reason.STATIC_FACE


def test_liveness_needs_two_frames() -> None:
    with pytest.raises(ValueError, match="liveness"):
        policy(k=1, n=3)
    assert policy(k=1, n=3, require_liveness=False).k == 1


def test_faces_beyond_the_cap_deny() -> None:
    decider = UnlockDecider(policy())
    crowded = Frame("camera.door", 0.0, (alice(),), more_faces=True)
    decision = decider.observe(crowded)
    assert decision is not None and decision.reason is Reason.TOO_MANY_FACES
    assert decider.observe(Frame("camera.door", 1.0, (), more_faces=True)) is not None


def test_a_face_that_could_not_be_recognized_denies() -> None:
    """A stranger only the proposer saw, next to the owner's print: no grant, in or after it."""
    decider = UnlockDecider(policy())
    decider.observe(frame(0.0, alice(turned(0.0))))
    hidden = Frame("camera.door", 1.0, (alice(turned(0.15)),), unconfirmed_faces=1)
    decision = decider.observe(hidden)
    assert decision is not None and decision.reason is Reason.UNKNOWN_FACE
    assert not decision.granted
    later = UnlockDecider(policy(k=2, n=3))
    assert later.observe(Frame("camera.door", 0.0, (), unconfirmed_faces=1)) is None
    later.observe(frame(1.0, alice(turned(0.0))))
    decision = later.observe(frame(2.0, alice(turned(0.15))))
    assert decision is not None and decision.reason is Reason.UNKNOWN_FACE


def test_frames_without_a_face_count_toward_n() -> None:
    decider = UnlockDecider(policy(k=2, n=2))
    decider.observe(frame(0.0, alice(turned(0.0))))
    assert decider.observe(frame(1.0)) is None
    decision = decider.observe(frame(2.0, alice(turned(0.2))))
    assert decision is not None and decision.reason is Reason.WAITING_FOR_FRAMES


def photo_attempts(decider: UnlockDecider, starts: list[float]) -> list[Reason]:
    """Alice's photo held still for two frames from each start: one counted denial each.

    Starts more than ``window_s`` apart make separate attempts.
    """
    reasons = []
    for t in starts:
        decider.observe(frame(t, alice()))
        decision = decider.observe(frame(t + 1.0, alice()))
        assert decision is not None
        reasons.append(decision.reason)
    return reasons


def live_alice(decider: UnlockDecider, t: float) -> Decision | None:
    decider.observe(frame(t, alice(turned(0.0))))
    return decider.observe(frame(t + 1.0, alice(turned(0.2))))


def test_back_off_after_repeated_denials_names_who_tried() -> None:
    decider = UnlockDecider(policy(backoff=BackoffRules(first_s=10.0)))
    assert photo_attempts(decider, [0.0, 10.0, 20.0]) == [Reason.STATIC_FACE] * 3
    decision = live_alice(decider, 22.0)
    assert decision is not None and decision.reason is Reason.BACKOFF and not decision.granted
    assert decision.person == "alice"  # the audit keeps who it was
    assert decision.scores["backoff_left"] == pytest.approx(8.0)
    # Three more denials after the first back-off: the next one lasts twice as long.
    photo_attempts(decider, [40.0, 50.0, 60.0])
    decision = live_alice(decider, 62.0)
    assert decision is not None and decision.reason is Reason.BACKOFF
    assert decision.scores["backoff_left"] == pytest.approx(18.0)
    # After a quiet spell the back-off is over and forgotten; a live person gets in.
    decision = live_alice(decider, 1000.0)
    assert decision is not None and decision.granted


def test_a_stranger_cannot_back_off_an_authorized_person() -> None:
    decider = UnlockDecider(policy())
    stranger = FaceObservation(None, 0.8, False, FACE)
    reasons = [decider.observe(frame(t, stranger)) for t in (0.0, 5.0, 10.0, 15.0)]
    assert reasons[-1] is not None and reasons[-1].reason is Reason.BACKOFF
    decision = live_alice(decider, 20.0)
    assert decision is not None and decision.granted


def test_back_off_keeps_escalating_under_a_sustained_attack() -> None:
    decider, t, lengths = UnlockDecider(policy()), 0.0, []
    for _ in range(8):
        photo_attempts(decider, [t, t + 10.0, t + 20.0])  # the third starts a back-off at t + 21
        decider.observe(frame(t + 22.0, alice()))
        decision = decider.observe(frame(t + 23.0, alice()))
        assert decision is not None and decision.reason is Reason.BACKOFF
        lengths.append(decision.scores["backoff_left"] + 2.0)
        t += 21.0 + lengths[-1]  # the attacker resumes the moment it ends
    assert lengths == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0]


def test_a_paced_attacker_is_backed_off_too() -> None:
    """One try every 31 s never makes 3 a minute, but makes 10 an hour."""
    decider = UnlockDecider(policy())
    assert photo_attempts(decider, [31.0 * i for i in range(10)]) == [Reason.STATIC_FACE] * 10
    assert photo_attempts(decider, [31.0 * 9 + 2.0]) == [Reason.BACKOFF]


def test_back_off_is_forgotten_after_a_quiet_spell() -> None:
    decider = UnlockDecider(policy(backoff=BackoffRules(first_s=10.0, quiet_s=100.0)))
    photo_attempts(decider, [0.0, 10.0, 20.0, 500.0, 510.0, 520.0])
    (reason,) = photo_attempts(decider, [522.0])
    assert reason is Reason.BACKOFF
    decision = decider.observe(frame(524.0, alice()))
    assert decision is not None
    assert decision.scores["backoff_left"] == pytest.approx(7.0)  # 10 s from 521: not doubled


def test_invalid_back_off() -> None:
    with pytest.raises(ValueError, match="back-off"):
        BackoffRules(after=0)


def test_a_changed_policy_keeps_cooldown_and_back_off_and_drops_old_frames() -> None:
    """Saving the door settings must not let anyone in sooner (the options apply in place)."""
    decider = UnlockDecider(policy(require_liveness=False))
    decider.observe(frame(0.0, alice()))
    granted = decider.observe(frame(1.0, alice()))
    assert granted is not None and granted.granted
    decider.change_policy(policy(require_liveness=False, cooldown_s=20.0))
    decider.observe(frame(2.0, alice()))
    again = decider.observe(frame(3.0, alice()))
    assert again is not None and again.reason is Reason.COOLDOWN  # the last unlock still counts

    decider = UnlockDecider(policy(require_liveness=False, authorized=frozenset()))
    for t in (0.0, 1.0, 2.0):  # three denials in a minute: backed off
        decider.observe(frame(t, alice()))
    decider.change_policy(policy(require_liveness=False))  # now she would be authorized
    decider.observe(frame(3.0, alice()))
    backed_off = decider.observe(frame(4.0, alice()))
    assert backed_off is not None and backed_off.reason is Reason.BACKOFF

    decider = UnlockDecider(policy(require_liveness=False))
    decider.observe(frame(0.0, alice()))  # one of the two frames needed
    decider.change_policy(policy(require_liveness=False, k=2, n=2))
    waiting = decider.observe(frame(1.0, alice()))
    assert waiting is not None and waiting.reason is Reason.WAITING_FOR_FRAMES

"""Open-set matching: threshold, several embeddings per person, ambiguity, negatives."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.compact_ai.engine.face.gallery import (
    DEFAULT_MARGIN,
    DLIB_THRESHOLD,
    Gallery,
    MatchStatus,
    margin_for,
)


def _at(*values: float) -> np.ndarray:
    """An embedding: the given leading values, zeros elsewhere (128-d like dlib's)."""
    vector = np.zeros(128, dtype=np.float32)
    vector[: len(values)] = values
    return vector


@pytest.fixture
def gallery() -> Gallery:
    gallery = Gallery(threshold=0.6, margin=0.05)
    gallery.add("alice", _at(0.0))
    gallery.add("alice", _at(0.0, 1.0))  # a second photo, elsewhere in embedding space
    gallery.add("bob", _at(2.0))
    return gallery


def test_defaults_use_dlibs_threshold() -> None:
    assert Gallery().threshold == DLIB_THRESHOLD == 0.6


def test_empty_gallery_answers_unknown() -> None:
    match = Gallery().match(_at(0.0))
    assert match.status is MatchStatus.UNKNOWN
    assert match.person is None
    assert match.candidates == ()
    assert match.distance == float("inf")


def test_closest_person_within_threshold_matches(gallery: Gallery) -> None:
    match = gallery.match(_at(0.1))
    assert match.status is MatchStatus.MATCH
    assert match.person == "alice"
    assert match.distance == pytest.approx(0.1)
    assert [c.person for c in match.candidates] == ["alice", "bob"]
    assert match.candidates[1].distance == pytest.approx(1.9)


def test_distance_to_a_person_is_the_minimum_over_their_embeddings(gallery: Gallery) -> None:
    match = gallery.match(_at(0.0, 0.95))  # far from alice's first photo, near her second
    assert match.person == "alice"
    assert match.distance == pytest.approx(0.05)


def test_nobody_within_threshold_is_unknown(gallery: Gallery) -> None:
    match = gallery.match(_at(1.0))  # 1.0 from alice, 1.0 from bob, both beyond 0.6
    assert match.status is MatchStatus.UNKNOWN
    assert match.person is None
    assert match.distance == pytest.approx(1.0)


def test_threshold_is_inclusive() -> None:
    gallery = Gallery(threshold=0.5, margin=0.0)
    gallery.add("alice", _at(0.0))
    assert gallery.match(_at(0.5)).status is MatchStatus.MATCH
    assert gallery.match(_at(0.5001)).status is MatchStatus.UNKNOWN


def test_two_people_within_the_margin_is_ambiguous() -> None:
    gallery = Gallery(threshold=0.6, margin=0.05)
    gallery.add("alice", _at(0.0))
    gallery.add("bob", _at(0.8))
    match = gallery.match(_at(0.39))  # 0.39 from alice, 0.41 from bob
    assert match.status is MatchStatus.AMBIGUOUS
    assert match.person is None
    clear = gallery.match(_at(0.3))  # 0.3 vs 0.5: margin 0.2
    assert clear.status is MatchStatus.MATCH
    assert clear.person == "alice"


def test_rival_beyond_threshold_still_makes_it_ambiguous() -> None:
    # alice at 0.58 (within 0.6), bob at 0.61: too close to tell apart, even though bob is
    # beyond the threshold.
    gallery = Gallery(threshold=0.6, margin=0.05)
    gallery.add("alice", _at(0.0))
    gallery.add("bob", _at(1.19))
    assert gallery.match(_at(0.58)).status is MatchStatus.AMBIGUOUS


def test_negative_closer_than_the_person_blocks_them(gallery: Gallery) -> None:
    gallery.add_negative(_at(0.2), person="alice")  # alice's look-alike brother
    brother = gallery.match(_at(0.25))  # 0.25 from alice, 0.05 from the negative
    assert brother.status is MatchStatus.UNKNOWN
    assert brother.candidates[0].person == "alice"
    assert brother.candidates[0].blocked
    alice = gallery.match(_at(0.05))  # closer to alice than to the negative
    assert alice.status is MatchStatus.MATCH
    assert alice.person == "alice"


def test_negative_of_one_person_does_not_block_another(gallery: Gallery) -> None:
    gallery.add_negative(_at(2.1), person="alice")
    match = gallery.match(_at(2.05))
    assert match.status is MatchStatus.MATCH
    assert match.person == "bob"


def test_global_negative_blocks_everyone(gallery: Gallery) -> None:
    gallery.add_negative(_at(2.2))  # e.g. a poster of bob's face in the hallway
    match = gallery.match(_at(2.15))
    assert match.status is MatchStatus.UNKNOWN
    assert all(c.blocked for c in match.candidates if c.person == "bob")


def test_remove_forgets_a_person_and_their_negatives(gallery: Gallery) -> None:
    gallery.add_negative(_at(2.2), person="bob")
    gallery.remove("bob")
    assert gallery.people == ("alice",)
    assert gallery.count("bob") == 0
    gallery.add("bob", _at(2.0))
    assert gallery.match(_at(2.15)).person == "bob"  # the old negative is gone


def test_ties_are_broken_by_name_deterministically() -> None:
    gallery = Gallery(threshold=1.0, margin=0.0)
    gallery.add("zoe", _at(1.0))
    gallery.add("adam", _at(-1.0))
    match = gallery.match(_at(0.0))
    assert [c.person for c in match.candidates] == ["adam", "zoe"]
    assert match.person == "adam"


def test_people_and_counts(gallery: Gallery) -> None:
    assert gallery.people == ("alice", "bob")
    assert gallery.count("alice") == 2
    assert gallery.count("nobody") == 0


def test_non_finite_embeddings_are_refused(gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="finite"):
        gallery.add("carol", _at(float("nan")))
    with pytest.raises(ValueError, match="finite"):
        gallery.match(_at(float("inf")))


def test_a_look_alike_at_sfaces_scale_is_as_ambiguous_as_at_dlibs() -> None:
    """A sister 7 % of the distance further than the owner: ambiguous on both scales.

    SFace's distances are about 1.7x dlib's; with dlib's fixed 0.04 the same pair of faces
    would be told apart (and the door could open) on SFace only.
    """

    def family(threshold: float, margin: float, scale: float) -> Gallery:
        gallery = Gallery(threshold, margin)
        gallery.add("eileen", _at(0.0))
        gallery.add("sister", _at(0.87 * scale))
        return gallery

    for threshold, scale in ((0.52, 1.0), (1.13, 1.7)):
        probe = _at(0.42 * scale)  # eileen 0.42 x scale away, her sister 0.45 x scale
        match = family(threshold, margin_for(threshold), scale).match(probe)
        assert match.status is MatchStatus.AMBIGUOUS, threshold
    assert family(1.13, DEFAULT_MARGIN, 1.7).match(probe).person == "eileen"  # the old margin
    assert margin_for(0.39) == margin_for(0.6) == DEFAULT_MARGIN  # dlib's tiers: unchanged


def test_a_recognizer_keeps_its_embedders_margin_when_people_change() -> None:
    from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.pack.reference import SFACE_TIER, build_reference_pack

    sface = FaceRecognizer.load(ModelPack.load(build_reference_pack()), SFACE_TIER, "onnxruntime")
    assert sface.gallery.margin == margin_for(sface.threshold) > DEFAULT_MARGIN
    sface.set_people([("eileen", [_at(0.0)], [])])
    assert sface.gallery.margin == margin_for(sface.threshold)

"""What a TTS entity's voices are asked to say, and the speaker split of commands-recordings."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.compact_ai.engine.voice.commands import SILENCE, UNKNOWN
from custom_components.compact_ai.engine.voice.training.texts import (
    negative_words,
    spoken_negatives,
    spoken_texts,
    spread,
)
from tools.compact.errors import ToolError
from tools.compact.evaluate.commands import Clip
from tools.compact.evaluate.recordings import Options, score, speaker, split

PHRASES = ("lights on", "stop", "good night")


def test_each_voice_says_every_phrase_once_and_other_words() -> None:
    negatives = spoken_negatives(len(PHRASES), voices=12)
    first, second = (spoken_texts(PHRASES, index, negatives) for index in (0, 1))
    for said in (first, second):
        assert [text for text, label in said if label < len(PHRASES)] == list(PHRASES)
        others = [text for text, label in said if label == len(PHRASES)]
        assert len(others) == negatives == 10
        assert {"lights", "on", "good", "night"} <= set(others)  # the phrase parts
        assert not set(others) & set(PHRASES)
    assert first != second  # other voices say other words
    assert spoken_negatives(14, voices=24) == 28  # twice the phrases
    assert spoken_negatives(3, voices=1) == 120  # one voice says what many would
    assert spoken_negatives(3, voices=7) == 18  # 7 voices: 126 other words together
    assert "stop" not in negative_words(PHRASES)


def test_voices_and_speakers_are_picked_over_the_whole_list() -> None:
    speakers = [f"p{n}" for n in range(30)]
    assert spread(speakers, 4) == ["p0", "p10", "p19", "p29"]  # both ends, evenly between
    assert spread(speakers, 30) == spread(speakers, 99) == speakers
    assert spread(speakers, 1) == ["p0"]
    assert spread(speakers, 0) == spread([], 3) == []


@pytest.mark.parametrize(("fold", "recorders"), [(0, {"a1", "b2"}), (1, {"c3", "d4"})])
def test_no_test_speaker_was_recorded(fold: int, recorders: set[str]) -> None:
    silence = np.zeros(16_000, np.int16)
    clips = [
        Clip(f"{word}/{who}_nohash_{n}.wav", word if word != "cat" else UNKNOWN, silence)
        for word in ("stop", "go", "cat")
        for who in ("a1", "b2", "c3", "d4")
        for n in range(3)
    ]
    recorded, test = split(clips, ("stop", "go"), per_phrase=2, fold=fold)
    first = sorted(recorders)[0]
    assert [c.source for c in recorded] == [
        f"{word}/{first}_nohash_{n}.wav" for word in ("stop", "go") for n in range(2)
    ]
    tested = {speaker(c) for c in test if c.truth != UNKNOWN}
    assert tested == {"a1", "b2", "c3", "d4"} - recorders
    assert {speaker(c) for c in recorded} <= recorders
    assert sum(c.truth == UNKNOWN for c in test) == 12  # every other word is test


def test_a_third_fold_is_refused() -> None:
    with pytest.raises(ToolError, match="--folds is 1 or 2"):
        Options(audio=(), folds=3)


def test_folds_pool_their_decisions_clip_by_clip() -> None:
    first = [("stop", "stop"), ("go", UNKNOWN), (UNKNOWN, UNKNOWN), (SILENCE, SILENCE)]
    second = [("stop", "go"), ("go", "go"), ("go", "go"), (UNKNOWN, "stop")]
    pooled = score(first + second, ("stop", "go"))
    assert pooled["command_clips"] == 5
    assert pooled["commands"] == 3 / 5
    assert pooled["unknown_rejected"] == 1 / 2
    assert pooled["noise_rejected"] == 1.0
    assert (pooled["weakest"], pooled["weakest_rate"]) == ("stop", 1 / 2)

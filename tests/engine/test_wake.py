"""Wake phrases spotted in a stream by the shipped command set, fed in satellite-sized chunks."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from custom_components.compact_ai.engine.voice.audio import TARGET_RATE, decode_wav
from custom_components.compact_ai.engine.voice.commands import CommandRecognizer, CommandSet
from custom_components.compact_ai.engine.voice.wake import (
    CONTEXT_SAMPLES,
    END_QUIET_SAMPLES,
    HOP_SAMPLES,
    MAX_UTTERANCE_SAMPLES,
    WakeDetection,
    WakeSpotter,
)
from tools.compact.evaluate.commands import load_speech_embedder
from tools.compact.paths import PACK_DIR

CHUNK = 640  # 40 ms, as a voice satellite sends it
WAKE = "unlock the door"


def speak(text: str) -> np.ndarray:
    """Return espeak-ng's en-us+m3 (a voice the shipped set was trained with) saying ``text``."""
    assert shutil.which("espeak-ng"), "install espeak-ng (scripts/apt-packages.txt)"
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us+m3", "--stdout", text], capture_output=True, check=True
    ).stdout
    return decode_wav(wav).samples


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    """Return a quiet room: faint noise, not digital silence."""
    noise = np.random.default_rng(seed).normal(0, 30, int(seconds * TARGET_RATE))
    return np.rint(noise).astype(np.int16)


@pytest.fixture(scope="module")
def recognizer() -> CommandRecognizer:
    return CommandRecognizer(
        load_speech_embedder("reference"), CommandSet.load(PACK_DIR / "commands" / "default")
    )


def listen(spotter: WakeSpotter, stream: np.ndarray) -> list[tuple[WakeDetection, int]]:
    """Feed ``stream`` chunk by chunk; return each detection with the samples fed by then."""
    heard = []
    for start in range(0, len(stream), CHUNK):
        detection = spotter.feed(stream[start : start + CHUNK])
        if detection is not None:
            heard.append((detection, spotter.received))
    return heard


def test_the_wake_phrase_is_found_once_right_after_it_ends(
    recognizer: CommandRecognizer,
) -> None:
    before, phrase = quiet(1.5), speak(WAKE)
    stream = np.concatenate([before, phrase, quiet(1.5, seed=1)])
    heard = listen(WakeSpotter(recognizer, [WAKE]), stream)
    assert len(heard) == 1
    detection, received = heard[0]
    assert detection.phrase == WAKE
    assert detection.confidence >= recognizer.command_set.threshold
    spoken_end = len(before) + len(phrase)
    assert spoken_end - 0.4 * TARGET_RATE < detection.end <= spoken_end
    assert received - detection.end <= END_QUIET_SAMPLES + HOP_SAMPLES + CHUNK


def test_other_phrases_and_speech_do_not_wake(recognizer: CommandRecognizer) -> None:
    spotter = WakeSpotter(recognizer, [WAKE])
    parts = [quiet(1.0)]
    for text in ("lock the door", "the weather is nice today", "stop"):
        parts += [speak(text), quiet(1.0, seed=len(parts))]
    assert listen(spotter, np.concatenate(parts)) == []
    assert spotter.last is not None and spotter.last.label == "stop"


def test_a_wake_phrase_after_other_speech_is_found(recognizer: CommandRecognizer) -> None:
    stream = np.concatenate(
        [quiet(0.5), speak("lights on"), quiet(0.8, 1), speak(WAKE), quiet(1.0, 2)]
    )
    heard = listen(WakeSpotter(recognizer, [WAKE, "stop"]), stream)
    assert [detection.phrase for detection, _ in heard] == [WAKE]


def test_endless_speech_and_silence_are_bounded(recognizer: CommandRecognizer) -> None:
    sentence = speak("the weather is nice today and tomorrow")
    voiced = np.flatnonzero(np.abs(sentence) > 300)
    babble = np.tile(sentence[voiced[0] : voiced[-1]], 5)  # 10 s without a pause
    stream = np.concatenate([quiet(0.5), babble, np.zeros(5 * TARGET_RATE, np.int16)])
    spotter, longest = WakeSpotter(recognizer, [WAKE]), 0
    for start in range(0, len(stream), CHUNK):
        assert spotter.feed(stream[start : start + CHUNK]) is None
        longest = max(longest, spotter.buffered)
    assert len(babble) > 2 * MAX_UTTERANCE_SAMPLES
    assert longest <= MAX_UTTERANCE_SAMPLES + CONTEXT_SAMPLES + HOP_SAMPLES + CHUNK
    assert spotter.buffered <= CONTEXT_SAMPLES + HOP_SAMPLES
    assert spotter.received == len(stream)


def test_phrases_must_belong_to_the_command_set(recognizer: CommandRecognizer) -> None:
    with pytest.raises(ValueError, match="hey computer"):
        WakeSpotter(recognizer, ["hey computer"])
    with pytest.raises(ValueError, match="none given"):
        WakeSpotter(recognizer, [])

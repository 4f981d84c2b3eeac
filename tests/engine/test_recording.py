"""The checks of a user's recording: its clipped share, and the phrase the shipped set hears."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from custom_components.compact_ai.engine.voice.audio import TARGET_RATE, decode_wav
from custom_components.compact_ai.engine.voice.commands import CommandRecognizer, CommandSet
from custom_components.compact_ai.engine.voice.recording import (
    CLIPPED_LEVEL,
    clipped_share,
    sounds_like,
)
from tools.compact.evaluate.commands import load_speech_embedder
from tools.compact.paths import PACK_DIR


def test_clipped_share_counts_samples_at_full_scale() -> None:
    assert clipped_share(np.zeros(0, np.int16)) == 0.0
    samples = np.array([32767, -32768, CLIPPED_LEVEL, -CLIPPED_LEVEL + 1, 0], np.int16)
    assert clipped_share(samples) == pytest.approx(3 / 5)


@pytest.fixture(scope="module")
def recognizer() -> CommandRecognizer:
    embedder = load_speech_embedder("reference")
    return CommandRecognizer(embedder, CommandSet.load(PACK_DIR / "commands" / "default"))


def spoken(text: str, voice: str = "en-gb") -> np.ndarray:
    assert shutil.which("espeak-ng"), "install espeak-ng (scripts/apt-packages.txt)"
    command = ["espeak-ng", "-v", voice, "--stdout", text]
    return decode_wav(subprocess.run(command, capture_output=True, check=True).stdout).samples


def recorded(folder: Path, text: str) -> list[Path]:
    """Write recordings of ``text`` by three espeak-ng voices; return their files."""
    files = []
    for voice in ("en-gb", "en-029", "en-gb-scotland"):
        path = folder / f"{text}-{voice}.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(TARGET_RATE)
            wav.writeframes(spoken(text, voice).astype("<i2").tobytes())
        files.append(path)
    return files


def test_a_recording_of_another_phrase_is_named(recognizer: CommandRecognizer) -> None:
    stop = spoken("stop")
    assert sounds_like(recognizer, stop, "yes", {}) == "stop"
    assert sounds_like(recognizer, stop, "stop", {}) is None
    # A phrase the set does not know, without recordings, cannot be told from its neighbour.
    assert sounds_like(recognizer, stop, "good night", {}) is None
    # Speech that is no command of the set is not another phrase.
    assert sounds_like(recognizer, spoken("the weather is nice today"), "yes", {}) is None


def test_phrases_the_set_does_not_know_are_told_apart_by_recordings(
    recognizer: CommandRecognizer, tmp_path: Path
) -> None:
    recordings = {"say cat": recorded(tmp_path, "cat"), "say tree": recorded(tmp_path, "tree")}
    tree = spoken("tree", "en-us")
    assert sounds_like(recognizer, tree, "say cat", recordings) == "say tree"
    assert sounds_like(recognizer, tree, "say tree", recordings) is None
    # A damaged recording leaves "say cat" too few to compare with: nothing is refused.
    recordings["say cat"][0].write_bytes(b"RIFF")
    assert sounds_like(recognizer, tree, "say cat", recordings) is None

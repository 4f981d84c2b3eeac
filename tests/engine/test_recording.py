"""The checks of a user's recording: its clipped share, and the phrase the shipped set hears."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from custom_components.compact_ai.engine.voice.audio import decode_wav
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


def spoken(text: str) -> np.ndarray:
    assert shutil.which("espeak-ng"), "install espeak-ng (scripts/apt-packages.txt)"
    command = ["espeak-ng", "-v", "en-gb", "--stdout", text]
    return decode_wav(subprocess.run(command, capture_output=True, check=True).stdout).samples


def test_a_recording_of_another_phrase_is_named(recognizer: CommandRecognizer) -> None:
    stop = spoken("stop")
    assert sounds_like(recognizer, stop, "yes") == "stop"
    assert sounds_like(recognizer, stop, "stop") is None
    # A phrase the set does not know cannot be told apart from its nearest neighbour.
    assert sounds_like(recognizer, stop, "good night") is None
    # Speech that is no command of the set is not another phrase.
    assert sounds_like(recognizer, spoken("the weather is nice today"), "yes") is None

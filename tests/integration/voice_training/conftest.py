"""Fixtures of the voice training tests: a tiny training plan, a config folder per test, audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from homeassistant.core import HomeAssistant

from custom_components.compact_ai.voice import training as voice_training
from custom_components.compact_ai.voice.training import TrainingSize

from .helpers import HELD_OUT, PHRASES, RATE, STOP_VOICES, speak, wav_file


@pytest.fixture(autouse=True)
def tiny_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train with a tiny plan that leaves the test voice's accent out."""
    monkeypatch.setattr(
        voice_training, "SIZE", TrainingSize(per_phrase=30, negatives=60, hold_out=(HELD_OUT,))
    )


@pytest.fixture(autouse=True)
def private_config_dir(private_config_dir: None) -> None:
    """Every test here has its own config folder (recordings and trained sets are files)."""


@pytest.fixture(scope="package")
def utterances() -> dict[str, bytes]:
    texts = {*PHRASES, "lights on", "yes"}
    return {text: speak(text).astype("<i2").tobytes() for text in texts}


@pytest.fixture(scope="package")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WAV files: a spoken phrase, silence and a broken one."""
    folder = tmp_path_factory.mktemp("audio")
    wav_file(folder / "garage.wav", speak("open the garage", "en-gb"))
    for voice in STOP_VOICES:
        wav_file(folder / f"stop-{voice}.wav", speak("stop", voice))
    wav_file(folder / "silent.wav", np.zeros(RATE, np.int16))
    (folder / "bad.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    return folder


@pytest.fixture
def audio_dir(hass: HomeAssistant, audio_files: Path) -> Path:
    """The WAV files' folder, which Home Assistant may read."""
    hass.config.allowlist_external_dirs = {str(audio_files)}
    return audio_files

"""Calibration data: speech windows are decoded exactly like the integration decodes audio."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tools.compact.compress.calibration import speech_windows
from tools.compact.errors import ToolError


def write_wav(path: Path, samples: np.ndarray, rate: int, channels: int) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype("<i2").tobytes())


def test_windows_from_any_pcm_wav(tmp_path: Path) -> None:
    tone = (np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100) * 8000).astype(np.int16)
    write_wav(tmp_path / "stereo.wav", np.repeat(tone, 2), 44100, 2)  # 1 s, stereo, 44.1 kHz
    write_wav(tmp_path / "short.wav", tone[:8000], 16000, 1)  # 0.5 s, mono, 16 kHz
    windows = speech_windows([tmp_path / "stereo.wav", tmp_path / "short.wav"], 4000)
    assert windows.shape == (4 + 2, 4000)
    assert windows.dtype == np.float32
    assert 7000 < np.abs(windows[:4]).max() <= 8001  # resampled, downmixed, int16 range


def test_non_pcm_file_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(ToolError, match=r"bad\.wav|WAV|RIFF|fmt"):
        speech_windows([tmp_path / "bad.wav"], 4000)

"""Recordings that must not be trained on, and unusual ones that must be.

Silence, speech driven into the limit and a recording of another phrase are refused with a
translated message naming the file, and change nothing: not the store, not the recordings
already kept, not the command set in use. 8 kHz and stereo files are kept as 16 kHz mono.
"""

from __future__ import annotations

import copy
import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.engine.voice.audio import resample, to_int16
from custom_components.compact_ai.voice.commands import SOURCE_FILE
from custom_components.compact_ai.voice.store import STORAGE_KEY

from ..common import assert_translated, call, transcribe
from .helpers import RATE, STOP_VOICES, commands, speak


def write_wav(path: Path, frames: np.ndarray, rate: int) -> Path:
    """Write int16 ``frames`` (samples, or samples x channels) as a PCM WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1 if frames.ndim == 1 else frames.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames.astype("<i2").tobytes())
    return path


def at_8_khz(samples: np.ndarray) -> np.ndarray:
    """Return 16 kHz int16 ``samples`` as a telephone-band 8 kHz recording."""
    return to_int16(resample(samples.astype(np.float32) / 32768.0, RATE, 8_000))


def clipped(samples: np.ndarray, gain: float = 20.0) -> np.ndarray:
    """Return ``samples`` amplified ``gain`` times into the int16 limit (a microphone too hot)."""
    return np.clip(samples.astype(np.float64) * gain, -32768, 32767).astype(np.int16)


@pytest.fixture
def bad_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A folder Home Assistant may read, with good and bad recordings of "stop"."""
    stop = speak("stop", "en-gb")
    write_wav(tmp_path / "silent.wav", np.zeros(2 * RATE, np.int16), RATE)
    write_wav(tmp_path / "clipped.wav", clipped(stop), RATE)
    write_wav(tmp_path / "stop.wav", stop, RATE)
    write_wav(tmp_path / "stop-8k.wav", at_8_khz(stop), 8_000)
    write_wav(tmp_path / "stop-loud.wav", clipped(stop, 2.0), RATE)  # a few peaks cut: kept
    lights = speak("lights on", "en-gb")
    write_wav(tmp_path / "lights-stereo.wav", np.stack([lights, lights // 2], axis=1), RATE)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return tmp_path


def _read_folder(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.wav"))}


async def kept(
    hass: HomeAssistant, entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> tuple[Any, dict[str, bytes]]:
    """Return the stored voice data and every recording file, to compare later."""
    folder = commands(entry).store.recordings_dir
    files = await hass.async_add_executor_job(_read_folder, folder)
    return copy.deepcopy(hass_storage.get(STORAGE_KEY)), files


async def stored_recording(hass: HomeAssistant, entry: MockConfigEntry, phrase: str) -> bytes:
    """Return the WAV file of the newest recording of ``phrase``."""
    store = commands(entry).store
    path = store.recordings_dir / phrase / store.recordings[phrase][-1].file
    return await hass.async_add_executor_job(path.read_bytes)


async def test_bad_recordings_are_refused_and_change_nothing(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    bad_dir: Path,
    hass_storage: dict[str, Any],
    utterances: dict[str, bytes],
) -> None:
    # One recording already kept (without a training, so the shipped set stays in use).
    await commands(entry).async_add_recording("stop", speak("stop", "en-029"), SOURCE_FILE)
    before = await kept(hass, entry, hass_storage)
    assert before[0]["data"]["recordings"]["stop"] and len(before[1]) == 1
    for name, phrase, key, named in (
        ("silent.wav", "stop", "no_speech", ""),
        ("clipped.wav", "stop", "recording_clipped", "%"),
        ("stop.wav", "yes", "recording_sounds_like", '"stop", not "yes"'),
    ):
        path = str(bad_dir / name)
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "add_voice_recording", phrase=phrase, file=path)
        assert err.value.translation_key == key
        text = assert_translated(err.value)
        assert path in text and named in text, text
        assert await kept(hass, entry, hass_storage) == before
    assert commands(entry).trainer.task is None  # nothing to train on
    assert not entry.runtime_data.voice.custom
    assert (await transcribe(hass, utterances["stop"])).text == "stop"  # still heard
    await commands(entry).async_shutdown()


async def test_a_recording_of_another_new_phrase_is_refused(
    hass: HomeAssistant, entry: MockConfigEntry, bad_dir: Path, hass_storage: dict[str, Any]
) -> None:
    """Phrases the set in use does not know yet are told apart by their recordings."""
    phrases = ("open the garage", "good night")
    await commands(entry).store.async_set_phrases(phrases)  # no training: the shipped set
    for phrase in phrases:
        for voice in STOP_VOICES:  # three speakers each
            await commands(entry).async_add_recording(phrase, speak(phrase, voice), SOURCE_FILE)
    before = await kept(hass, entry, hass_storage)
    write_wav(bad_dir / "night.wav", speak("good night"), RATE)
    path = str(bad_dir / "night.wav")
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "add_voice_recording", phrase="open the garage", file=path)
    assert err.value.translation_key == "recording_sounds_like"
    assert '"good night", not "open the garage"' in assert_translated(err.value)
    assert await kept(hass, entry, hass_storage) == before
    response = await call(hass, "add_voice_recording", phrase="good night", file=path)
    assert response["recordings"]["good night"] == len(STOP_VOICES) + 1  # a fourth speaker
    await commands(entry).async_shutdown()


async def test_8_khz_stereo_and_loud_recordings_are_kept_as_16_khz_mono(
    hass: HomeAssistant, entry: MockConfigEntry, bad_dir: Path
) -> None:
    voice = entry.runtime_data.voice
    files = (("stop-8k.wav", "stop"), ("lights-stereo.wav", "lights on"), ("stop-loud.wav", "stop"))
    for name, phrase in files:
        before = commands(entry).store.recording_count(phrase)
        response = await call(hass, "add_voice_recording", phrase=phrase, file=str(bad_dir / name))
        assert response["recordings"][phrase] == before + 1
        data = await stored_recording(hass, entry, phrase)
        recording = await hass.async_add_executor_job(wave_format, data)
        assert recording[:3] == (1, 2, RATE)
        assert 0.5 < recording[3] / RATE < 3.0  # cut around the speech
        assert (await voice.async_recognize(data)).phrase == phrase  # the speech is in it
    await commands(entry).async_shutdown()


def wave_format(data: bytes) -> tuple[int, int, int, int]:
    """Return channels, sample width, rate and frame count of WAV ``data``."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()

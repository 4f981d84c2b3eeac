"""Helpers of the voice training tests: speech from espeak-ng, waiting for a training."""

from __future__ import annotations

import asyncio
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_PHRASES, DOMAIN
from custom_components.compact_ai.engine.voice.audio import decode_wav
from custom_components.compact_ai.voice.commands import VoiceCommands

WAKE = "wake_word.compact_ai_wake_phrases"
VOICE_EVENT = "event.compact_ai_voice_command"
TRAINING_SENSOR = "sensor.compact_ai_voice_training"
RATE = 16_000
HELD_OUT = "espeak-ng:en-us"  # training never hears this accent (any variant)
TEST_VOICE = "en-us+m3"
PHRASES = ["stop", "open the garage", "good night"]
TIMEOUT = 300.0
STOP_VOICES = ("en-gb", "en-029", "en-gb-scotland")  # recordings of "stop"


def speak(text: str, voice: str = TEST_VOICE) -> np.ndarray:
    """Return 16 kHz int16 samples of espeak-ng saying ``text`` with half a second of silence."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    return np.concatenate([np.zeros(RATE // 4, np.int16), decode_wav(wav).samples,
                           np.zeros(RATE // 2, np.int16)])  # fmt: skip


def wav_file(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def commands(entry: MockConfigEntry) -> VoiceCommands:
    result: VoiceCommands = entry.runtime_data.commands
    return result


async def trained(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Wait for the training to end; return the training sensor's attributes."""
    task = commands(entry).trainer.task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), TIMEOUT)
    await hass.async_block_till_done()
    state = hass.states.get(TRAINING_SENSOR)
    assert state.state != "training"
    return dict(state.attributes) | {"state": state.state}


def repair(hass: HomeAssistant, entry: MockConfigEntry, issue: str) -> ir.IssueEntry | None:
    """Return the entry's repair issue ``issue`` if it is raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{issue}_{entry.entry_id}")


async def set_phrases(hass: HomeAssistant, entry: MockConfigEntry, phrases: list[str]) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "voice"}
    )
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_PHRASES: phrases}
    )

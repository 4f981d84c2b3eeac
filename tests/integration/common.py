"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import DOMAIN

CAMERA = "camera.front_door"


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def set_up_entry(hass: HomeAssistant, options: dict[str, Any]) -> MockConfigEntry:
    """Add a Compact AI entry with ``options`` and set it up; it must load."""
    entry = MockConfigEntry(domain=DOMAIN, options=options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def show(hass: HomeAssistant, photo: Path) -> None:
    """Point the local_file camera at another photo."""
    await hass.services.async_call(
        "local_file",
        "update_file_path",
        {"entity_id": CAMERA, "file_path": str(photo)},
        blocking=True,
    )


STT = "stt.compact_ai_commands"
CHUNK = 1280  # 40 ms of 16-bit audio, as a voice satellite sends it


def metadata(channel: stt.AudioChannels = stt.AudioChannels.CHANNEL_MONO) -> stt.SpeechMetadata:
    """What a voice satellite declares: 16 kHz 16-bit PCM WAV."""
    return stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=channel,
    )


async def chunks(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    """Stream ``data`` as a voice satellite would."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stt_entity(hass: HomeAssistant) -> stt.SpeechToTextEntity:
    """Our speech-to-text entity; it must exist."""
    entity = stt.async_get_speech_to_text_entity(hass, STT)
    assert entity is not None
    return entity


async def transcribe(hass: HomeAssistant, data: bytes) -> stt.SpeechResult:
    """Send ``data`` to speech-to-text in satellite-sized chunks."""
    return await stt_entity(hass).internal_async_process_audio_stream(metadata(), chunks(data))

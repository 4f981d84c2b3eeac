"""Speech-to-text for Assist: recognizes the phrases of the command set, nothing else."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable

from homeassistant.components.stt import (
    AudioBitRates,
    AudioChannels,
    AudioCodecs,
    AudioFormats,
    AudioSampleRates,
    SpeechMetadata,
    SpeechResult,
    SpeechResultState,
    SpeechToTextEntity,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import CompactAIConfigEntry
from .engine.errors import EngineError
from .entity import CompactAIEntity, service_device
from .voice.manager import MAX_PCM_BYTES

_LOGGER = logging.getLogger(__name__)

# Not polled; concurrent recognitions share the inference slots of helpers/inference.py.
PARALLEL_UPDATES = 0
COMMANDS = EntityDescription(key="commands", translation_key="commands")
WAV_HEADER_ALLOWANCE = 4096  # a WAV header (with extra chunks) before the samples


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CompactAIConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the speech-to-text entity of the command set."""
    async_add_entities([CommandSpeechToText(entry, COMMANDS, service_device(entry))])


async def collect(stream: AsyncIterable[bytes], limit: int) -> bytes:
    """Read ``stream`` until it ends or ``limit`` bytes are kept (a stream may never end)."""
    kept = bytearray()
    async for chunk in stream:
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    return bytes(kept)


class CommandSpeechToText(CompactAIEntity, SpeechToTextEntity):
    """Turns a spoken command into its phrase; other speech gives an error result."""

    @property
    def available(self) -> bool:
        """Available while the speech models and command set are usable."""
        return self._entry.runtime_data.voice.available

    @property
    def supported_languages(self) -> list[str]:
        """Return the languages of the command set."""
        return ["en", "en-US"]

    @property
    def supported_formats(self) -> list[AudioFormats]:
        """Return the container formats."""
        return [AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[AudioCodecs]:
        """Return the codecs."""
        return [AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[AudioBitRates]:
        """Return the sample sizes."""
        return [AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[AudioSampleRates]:
        """Return the sample rates."""
        return [AudioSampleRates.SAMPLERATE_16000]

    @property
    def supported_channels(self) -> list[AudioChannels]:
        """Return the channel counts."""
        return [AudioChannels.CHANNEL_MONO]

    async def async_process_audio_stream(
        self, metadata: SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> SpeechResult:
        """Recognize the command in the first seconds of ``stream`` (the rest is dropped)."""
        data = await collect(stream, MAX_PCM_BYTES + WAV_HEADER_ALLOWANCE)
        try:
            result = await self._entry.runtime_data.voice.async_recognize(data)
        except EngineError as err:
            _LOGGER.warning("Voice command audio could not be used: %s", err)
            return SpeechResult(None, SpeechResultState.ERROR)
        if result.phrase is None:
            return SpeechResult(None, SpeechResultState.ERROR)
        return SpeechResult(result.phrase, SpeechResultState.SUCCESS)

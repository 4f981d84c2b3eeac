"""Wake word detection for Assist: any phrase of the command set can wake the pipeline."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable

import numpy as np
from homeassistant.components.wake_word import (
    DetectionResult,
    WakeWord,
    WakeWordDetectionEntity,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import CompactAIConfigEntry
from .engine.errors import InferenceError
from .engine.voice.wake import HOP_SAMPLES, MAX_UTTERANCE_SAMPLES, WakeSpotter
from .entity import CompactAIEntity, service_device
from .helpers.inference import async_infer

# Not polled; concurrent streams share the inference slots of helpers/inference.py.
PARALLEL_UPDATES = 0
WAKE_PHRASES = EntityDescription(key="wake_phrases", translation_key="wake_phrases")
QUEUE_SAMPLES = MAX_UTTERANCE_SAMPLES  # audio kept to hand on what followed the phrase


async def async_setup_entry(
    hass: HomeAssistant,
    entry: CompactAIConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the wake word entity of the command set."""
    async_add_entities([CommandWakeWord(entry, WAKE_PHRASES, service_device(entry))])


class CommandWakeWord(CompactAIEntity, WakeWordDetectionEntity):
    """Listens for phrases of the command set; the user adds their own wake phrase as one."""

    @property
    def available(self) -> bool:
        """Available while the speech models and command set are usable."""
        return self._entry.runtime_data.voice.available

    async def get_supported_wake_words(self) -> list[WakeWord]:
        """Return the phrases of the command set in use."""
        phrases = self._entry.runtime_data.voice.phrases
        return [WakeWord(id=phrase, name=phrase, phrase=phrase) for phrase in phrases]

    async def _async_process_audio_stream(
        self, stream: AsyncIterable[tuple[bytes, int]], wake_word_id: str | None
    ) -> DetectionResult | None:
        """Return the first phrase heard (``wake_word_id``, or any phrase if ``None``).

        The chunks after the phrase ended come back as ``queued_audio`` for speech-to-text.
        """
        recognizer = self._entry.runtime_data.voice.loaded_recognizer()
        phrases = recognizer.command_set.phrases if wake_word_id is None else (wake_word_id,)
        try:
            spotter = WakeSpotter(recognizer, phrases)
        except ValueError as err:
            raise InferenceError(str(err)) from err
        recent: deque[tuple[bytes, int, int]] = deque()  # chunk, timestamp, first sample
        pending: list[np.ndarray] = []
        received = waiting = 0
        async for chunk, timestamp in stream:
            samples = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2").astype(np.int16)
            recent.append((chunk, timestamp, received))
            while recent and recent[0][2] < received - QUEUE_SAMPLES:
                recent.popleft()
            received += len(samples)
            pending.append(samples)
            waiting += len(samples)
            if waiting < HOP_SAMPLES:  # one executor job per hop, not per 40 ms chunk
                continue
            audio, pending, waiting = np.concatenate(pending), [], 0
            detection = await async_infer(self.hass, spotter.feed, audio)
            if detection is not None:
                queued = [(c, ts) for c, ts, first in recent if first + len(c) // 2 > detection.end]
                return DetectionResult(
                    wake_word_id=detection.phrase,
                    wake_word_phrase=detection.phrase,
                    timestamp=timestamp,
                    queued_audio=queued,
                )
        return None

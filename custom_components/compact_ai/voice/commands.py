"""The user's voice commands: phrases, recordings and spoken captures.

Every change to the phrases or recordings asks the :class:`~.trainer.VoiceTrainer` to train
them again (in the background). The shipped default set is used until the user changes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later

from ..engine.voice.recording import sounds_like
from ..engine.voice.training import DEFAULT_PHRASES
from ..helpers.inference import async_infer
from .manager import VoiceManager, VoiceResult
from .store import VoiceError, VoiceStore, clip_speech, phrase_list
from .trainer import TrainingState, VoiceTrainer, missing_recordings

_LOGGER = logging.getLogger(__name__)

SOURCE_FILE: Final = "file"
SOURCE_VOICE: Final = "voice"
DEFAULT_CAPTURE_MINUTES: Final = 10


@dataclass(slots=True)
class Capture:
    """Save the next ``remaining`` utterances sent to speech-to-text as ``phrase``.

    ``expire`` cancels the timer that ends the capture when nobody speaks.
    """

    phrase: str
    count: int
    remaining: int
    expire: CALLBACK_TYPE = field(default=lambda: None, repr=False)

    @property
    def saved(self) -> int:
        """Return how many utterances were kept so far."""
        return self.count - self.remaining


class VoiceCommands:
    """Owns the custom phrases and their recordings for one config entry."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        store: VoiceStore,
        voice: VoiceManager,
        tier: str,
        backend: str,
    ) -> None:
        """Use ``store`` for the phrases and swap the command set of ``voice``."""
        self.hass = hass
        self._entry = entry
        self.store = store
        self.voice = voice
        self.capture: Capture | None = None
        self._listeners: list[Callable[[], None]] = []
        self._capture_lock = asyncio.Lock()
        self.trainer = VoiceTrainer(hass, entry, store, voice, tier, backend, self._notify)

    # ------------------------------------------------------------------ what is in use

    @property
    def phrases(self) -> tuple[str, ...]:
        """Return the phrase list: the user's, or the default set's."""
        return self.store.phrases if self.store.phrases is not None else DEFAULT_PHRASES

    @property
    def custom(self) -> bool:
        """Return whether the user has their own phrase list."""
        return self.store.phrases is not None

    async def async_tts_voices(self) -> int:
        """Return how many synthesizer voices this host has (looked up once)."""
        return await self.trainer.async_tts_voices()

    def missing_recordings(self) -> list[str]:
        """Return the phrases with too few recordings to train without a synthesizer."""
        return missing_recordings(self.store, self.phrases)

    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` when the training or a capture changes; return the remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @callback
    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ changes

    @callback
    def async_start(self) -> None:
        """Subscribe to recognitions; train if the phrases changed or their set is unusable."""
        self._entry.async_on_unload(self.voice.async_add_listener(self._on_result))
        if self.voice.available and (
            self.store.needs_training(self.voice.speech_id) or self.custom != self.voice.custom
        ):
            self.trainer.async_request()

    async def async_set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Use ``phrases``; an empty list or the untouched default list means the default."""
        recorded = any(self.store.recording_count(phrase) for phrase in phrases)
        if not phrases or (set(phrases) == set(DEFAULT_PHRASES) and not recorded):
            await self.async_reset()
            return
        if self.store.phrases is not None and set(phrases) == set(self.store.phrases):
            return  # only the order changed
        self.trainer.async_interrupt()  # before its recordings are deleted
        await self.store.async_set_phrases(phrases)
        self.trainer.async_request()

    async def async_set_tts_entities(self, entities: tuple[str, ...]) -> None:
        """Let ``entities`` speak the phrases in training; retrain the user's phrases."""
        if await self.store.async_set_tts_entities(entities) and self.custom:
            self.trainer.async_request()  # a run in progress starts over with them

    async def async_add_phrase(self, phrase: str) -> None:
        """Add one phrase to the list."""
        if phrase in self.phrases:
            raise VoiceError("phrase_exists", phrase=phrase)
        await self.async_set_phrases(phrase_list([*self.phrases, phrase]))  # checks the count

    async def async_remove_phrase(self, phrase: str) -> None:
        """Remove one phrase (and its recordings); the last one removed means the default."""
        if phrase not in self.phrases:
            raise VoiceError("phrase_not_found", phrase=phrase)
        await self.async_set_phrases(tuple(p for p in self.phrases if p != phrase))

    async def async_reset(self) -> None:
        """Go back to the shipped default set, dropping the user's phrases and recordings."""
        await self.trainer.async_stop()
        self._end_capture()
        await self.store.async_set_phrases(None)
        if self.voice.available and self.voice.custom:
            await self.voice.async_use_command_set(None)
        self.trainer.async_set_state(TrainingState.IDLE)

    async def async_add_recording(self, phrase: str, samples: np.ndarray, source: str) -> int:
        """Save a recording of ``phrase``; return how many it has now."""
        if phrase not in self.phrases:
            raise VoiceError("phrase_not_found", phrase=phrase)
        speech = clip_speech(samples)  # first: audio without speech must change nothing
        await self._async_check_phrase(phrase, samples)
        if not self.custom:
            await self.store.async_set_phrases(self.phrases)
        return await self.store.async_add_recording(phrase, speech, source)

    async def _async_check_phrase(self, phrase: str, samples: np.ndarray) -> None:
        """Refuse a recording that clearly is another phrase (to the set, or the recordings)."""
        if not self.voice.available:
            return
        recognizer, recordings = self.voice.loaded_recognizer(), self.store.recording_files()
        other = await async_infer(self.hass, sounds_like, recognizer, samples, phrase, recordings)
        if other is not None:
            raise VoiceError("recording_sounds_like", phrase=phrase, other=other)

    async def async_shutdown(self) -> None:
        """End a capture and stop a running training (on unload)."""
        self._end_capture()
        await self.trainer.async_shutdown()

    # ------------------------------------------------------------------ spoken captures

    @callback
    def async_start_capture(
        self, phrase: str, count: int, minutes: float = DEFAULT_CAPTURE_MINUTES
    ) -> None:
        """Save the next ``count`` spoken utterances as recordings of ``phrase``, then train.

        The capture ends after ``minutes`` even if fewer were spoken (then what was saved is
        trained on). A new capture replaces a running one.
        """
        if phrase not in self.phrases:
            raise VoiceError("phrase_not_found", phrase=phrase)
        self._end_capture()
        capture = Capture(phrase, count, count)

        @callback
        def expired(_now: datetime) -> None:
            self._capture_timed_out(capture)

        capture.expire = async_call_later(self.hass, timedelta(minutes=minutes), expired)
        self.capture = capture
        self._notify()

    @callback
    def _end_capture(self) -> None:
        if self.capture is not None:
            self.capture.expire()
            self.capture = None

    @callback
    def _capture_timed_out(self, capture: Capture) -> None:
        if self.capture is not capture:
            return
        self.capture = None
        _LOGGER.info(
            "Recording %r ended after its time limit with %d of %d utterances",
            capture.phrase, capture.saved, capture.count,
        )  # fmt: skip
        self._notify()
        self._entry.async_create_task(
            self.hass, self._async_train_after_captures(capture), "compact_ai voice capture"
        )

    @callback
    def _on_result(self, result: VoiceResult) -> None:
        capture = self.capture
        if capture is None or not result.speech:
            return
        if result.phrase is not None and result.phrase != capture.phrase:
            # Another command (from anyone, any satellite: speech-to-text is not told which)
            # must not be trained as this phrase; unrecognized speech may be the new phrase.
            _LOGGER.debug("Heard %r while recording %r: not kept", result.phrase, capture.phrase)
            return
        self._entry.async_create_task(
            self.hass, self._async_capture(capture, result.samples), "compact_ai voice capture"
        )

    async def _async_capture(self, capture: Capture, samples: np.ndarray) -> None:
        """Keep one utterance; only a kept one counts, so a refused one is spoken again."""
        async with self._capture_lock:
            if capture.remaining <= 0:
                return  # enough were kept while this one waited
            try:
                await self.async_add_recording(capture.phrase, samples, SOURCE_VOICE)
            except VoiceError as err:
                _LOGGER.warning("A spoken sample of %r was not kept: %s", capture.phrase, err.key)
                return
            capture.remaining -= 1
            if capture.remaining <= 0 and self.capture is capture:
                self._end_capture()
            self._notify()
        if capture.remaining <= 0:
            self.trainer.async_request()

    async def _async_train_after_captures(self, capture: Capture) -> None:
        async with self._capture_lock:  # after the utterances still being checked
            if capture.saved:
                self.trainer.async_request()

    def as_dict(self) -> dict[str, Any]:
        """Return the state for attributes and diagnostics (no audio)."""
        capture = self.capture
        return {
            "phrases": list(self.phrases),
            "command_set": "custom" if self.voice.custom else "default",
            "progress": self.trainer.progress,
            "error": self.trainer.error,
            "recordings": {p: self.store.recording_count(p) for p in self.phrases},
            "capturing": None if capture is None else capture.phrase,
            "capture_remaining": 0 if capture is None else capture.remaining,
            "tts_entities": list(self.store.tts_entities),
            "tts": None if self.trainer.spoken is None else self.trainer.spoken.as_dict(),
        }

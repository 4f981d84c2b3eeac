"""The user's voice commands: phrases, recordings, background training and the switch-over.

Every change to the phrases or recordings starts a training run in an executor (a newer
change cancels the running one and starts over). A successful run replaces the command set
the speech-to-text entity uses, without a restart; a failed one leaves the previous set in
use. Without a synthesizer on the host, every phrase needs
:data:`~.voice_store.MIN_RECORDINGS_WITHOUT_TTS` recordings before training starts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import numpy as np
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from ..const import DOMAIN
from ..engine.errors import EngineError
from ..engine.voice.training import DEFAULT_PHRASES
from .manager import VoiceManager, VoiceResult
from .store import (
    MIN_RECORDINGS_WITHOUT_TTS,
    VoiceError,
    VoiceStore,
    clip_speech,
    phrase_list,
)
from .training import TrainingCancelled, TrainingRequest, train, tts_voice_count

_LOGGER = logging.getLogger(__name__)

EVENT_TRAINING: Final = f"{DOMAIN}_voice_training"
SOURCE_FILE: Final = "file"
SOURCE_VOICE: Final = "voice"
ISSUE_TRAINING_FAILED: Final = "voice_training_failed"
ISSUE_NEEDS_RECORDINGS: Final = "voice_needs_recordings"
DEFAULT_CAPTURE_MINUTES: Final = 10


class TrainingState(StrEnum):
    """What the voice training is doing."""

    IDLE = "idle"
    TRAINING = "training"
    FAILED = "failed"
    NEEDS_RECORDINGS = "needs_recordings"


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
    """Owns the custom phrases and their training for one config entry."""

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
        self._tier = tier
        self._backend = backend
        self.state = TrainingState.IDLE
        self.progress = 0  # percent shown to the user
        self.fraction = 0.0  # of the synthesis, as last reported by the training thread
        self.error: str | None = None
        self.capture: Capture | None = None
        self._tts_voices: int | None = None
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._cancel = threading.Event()
        self._again = False
        self._capture_lock = asyncio.Lock()

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
        if self._tts_voices is None:
            self._tts_voices = await self.hass.async_add_executor_job(tts_voice_count)
        return self._tts_voices

    def missing_recordings(self) -> list[str]:
        """Return the phrases with too few recordings to train without a synthesizer."""
        return [
            phrase
            for phrase in self.phrases
            if self.store.recording_count(phrase) < MIN_RECORDINGS_WITHOUT_TTS
        ]

    def async_add_listener(self, listener: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``listener`` when the training state changes; return the remover."""
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
            self.async_request_training()

    async def async_set_phrases(self, phrases: tuple[str, ...]) -> None:
        """Use ``phrases``; an empty list or the untouched default list means the default."""
        recorded = any(self.store.recording_count(phrase) for phrase in phrases)
        if not phrases or (set(phrases) == set(DEFAULT_PHRASES) and not recorded):
            await self.async_reset()
            return
        if self.store.phrases is not None and set(phrases) == set(self.store.phrases):
            return  # only the order changed
        self._interrupt()  # before its recordings are deleted
        await self.store.async_set_phrases(phrases)
        self.async_request_training()

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
        await self._async_stop_training()
        self._end_capture()
        await self.store.async_set_phrases(None)
        if self.voice.available and self.voice.custom:
            await self.voice.async_use_command_set(None)
        self._set_state(TrainingState.IDLE)

    async def async_add_recording(self, phrase: str, samples: np.ndarray, source: str) -> int:
        """Save a recording of ``phrase``; return how many it has now."""
        if phrase not in self.phrases:
            raise VoiceError("phrase_not_found", phrase=phrase)
        speech = clip_speech(samples)  # first: audio without speech must change nothing
        if not self.custom:
            await self.store.async_set_phrases(self.phrases)
        return await self.store.async_add_recording(phrase, speech, source)

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
        if capture.saved:
            self._entry.async_create_task(
                self.hass, self._async_train_after_captures(), "compact_ai voice capture"
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
        capture.remaining -= 1
        last = capture.remaining <= 0
        if last:
            self._end_capture()
        self._notify()
        self._entry.async_create_task(
            self.hass,
            self._async_capture(capture.phrase, result.samples, last),
            "compact_ai voice capture",
        )

    async def _async_capture(self, phrase: str, samples: np.ndarray, last: bool) -> None:
        async with self._capture_lock:
            try:
                await self.async_add_recording(phrase, samples, SOURCE_VOICE)
            except VoiceError as err:
                _LOGGER.warning("A spoken sample of %r was not kept: %s", phrase, err.key)
        if last:
            self.async_request_training()

    async def _async_train_after_captures(self) -> None:
        async with self._capture_lock:  # after the recordings still being saved
            self.async_request_training()

    # ------------------------------------------------------------------ training

    @callback
    def async_request_training(self) -> None:
        """Train now; a run in progress is cancelled and started over with the latest data."""
        if self._interrupt():
            return
        self.progress = 0
        self._set_state(TrainingState.TRAINING)
        self._task = self._entry.async_create_background_task(
            self.hass, self._async_run(), "compact_ai voice training"
        )

    @callback
    def _interrupt(self) -> bool:
        """Cancel a running training, to run again; return whether one was running."""
        if self._task is None or self._task.done():
            return False
        self._again = True
        self._cancel.set()
        return True

    async def async_shutdown(self) -> None:
        """Stop a running training and wait for its thread to end (on unload)."""
        self._end_capture()
        await self._async_stop_training()
        self.state = TrainingState.IDLE  # its repair issues go; a reload raises them again
        self._update_issues()

    @callback
    def async_cancel(self) -> None:
        """Ask a running training to stop at its next step (Home Assistant is stopping)."""
        self._again = False
        self._cancel.set()

    async def _async_stop_training(self) -> None:
        self.async_cancel()
        if self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _async_run(self) -> None:
        while True:
            self._again = False
            self._cancel = threading.Event()
            await self._async_train_once(self._cancel)
            if not self._again:
                return

    async def _async_train_once(self, cancel: threading.Event) -> None:
        phrases = self.store.phrases
        if phrases is None or not self.voice.available:
            self._set_state(TrainingState.IDLE)
            return
        use_tts = await self.async_tts_voices() > 0
        if not use_tts and self.missing_recordings():
            self._set_state(TrainingState.NEEDS_RECORDINGS)
            return
        revision = self.store.revision
        request = TrainingRequest(
            tier=self._tier,
            backend=self._backend,
            phrases=phrases,
            recordings=self.store.recording_files(),
            out=self.store.command_set_dir,
            use_tts=use_tts,
        )
        self.progress, self.fraction = 0, 0.0
        self._set_state(TrainingState.TRAINING)  # again, after a cancelled run
        try:
            summary = await self.hass.async_add_executor_job(
                train, request, cancel, self._report_threadsafe
            )
            await self.store.async_mark_trained(revision, self.voice.speech_id, summary)
            await self.voice.async_use_command_set(self.store.command_set_dir)
        except TrainingCancelled:
            _LOGGER.debug("Voice command training was cancelled")
            self._set_state(TrainingState.IDLE)
            return
        except (EngineError, OSError) as err:
            if cancel.is_set():  # its inputs changed under it (a phrase was removed)
                self._set_state(TrainingState.IDLE)
                return
            _LOGGER.error("Training the voice commands failed: %s", err)
            self._set_state(TrainingState.FAILED, str(err))
            self.hass.bus.async_fire(
                EVENT_TRAINING, {"result": "failed", "error": str(err), "phrases": list(phrases)}
            )
            return
        _LOGGER.info("Voice commands trained in %s s: %s", summary.get("seconds"), phrases)
        self.progress = 100
        self._set_state(TrainingState.IDLE)
        self.hass.bus.async_fire(
            EVENT_TRAINING,
            {"result": "success", "phrases": list(phrases), "seconds": summary.get("seconds")},
        )

    def _report_threadsafe(self, fraction: float) -> None:
        """Progress from the training thread (0..1 of the synthesis)."""
        self.hass.loop.call_soon_threadsafe(self._set_progress, fraction)

    @callback
    def _set_progress(self, fraction: float) -> None:
        self.fraction = fraction
        percent = round(95 * fraction)
        if self.state is TrainingState.TRAINING and percent != self.progress:
            self.progress = percent
            self._notify()

    @callback
    def _set_state(self, state: TrainingState, error: str | None = None) -> None:
        self.state = state
        self.error = error
        self._update_issues()
        self._notify()

    @callback
    def _update_issues(self) -> None:
        """Show a failed training and missing recordings under Settings -> Repairs."""
        raised = {
            ISSUE_TRAINING_FAILED: self.state is TrainingState.FAILED,
            ISSUE_NEEDS_RECORDINGS: self.state is TrainingState.NEEDS_RECORDINGS,
        }
        for issue, active in raised.items():
            issue_id = f"{issue}_{self._entry.entry_id}"
            if not active:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
                continue
            placeholders = (
                {"error": self.error or ""}
                if issue == ISSUE_TRAINING_FAILED
                else {
                    "phrases": ", ".join(self.missing_recordings()),
                    "count": str(MIN_RECORDINGS_WITHOUT_TTS),
                }
            )
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=issue,
                translation_placeholders=placeholders,
            )

    def as_dict(self) -> dict[str, Any]:
        """Return the state for attributes and diagnostics (no audio)."""
        capture = self.capture
        return {
            "phrases": list(self.phrases),
            "command_set": "custom" if self.voice.custom else "default",
            "progress": self.progress,
            "error": self.error,
            "recordings": {p: self.store.recording_count(p) for p in self.phrases},
            "capturing": None if capture is None else capture.phrase,
            "capture_remaining": 0 if capture is None else capture.remaining,
        }

"""Training the user's phrases in the background: one run at a time, restarted on change.

A run goes to an executor (:func:`.training.train`); a newer change cancels the running one
and starts over. A successful run replaces the command set the speech-to-text entity uses,
without a restart; a failed one leaves the previous set in use and raises a repair issue.
The user's Home Assistant TTS entities (:mod:`.ha_tts`) speak first, in the event loop;
their clips join the host's synthesizers and the recordings. Without any synthesizer (Home
Assistant OS without TTS entities, or entities that said nothing usable), every phrase needs
:data:`~.store.MIN_RECORDINGS_WITHOUT_TTS` recordings before training starts.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Collection, Sequence
from enum import StrEnum
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from ..const import DOMAIN
from ..engine.errors import EngineError
from .ha_tts import FAILED, SILENT, SKIPPED, TIMED_OUT, SpokenSpeech, async_speak
from .manager import VoiceManager
from .store import MIN_RECORDINGS_WITHOUT_TTS, VoiceStore
from .training import TrainingCancelled, TrainingRequest, train, tts_voice_count

_LOGGER = logging.getLogger(__name__)

EVENT_TRAINING: Final = f"{DOMAIN}_voice_training"
ISSUE_TRAINING_FAILED: Final = "voice_training_failed"
ISSUE_NEEDS_RECORDINGS: Final = "voice_needs_recordings"
ISSUE_TTS_FAILED: Final = "voice_tts_failed"
# Share of the progress the TTS entities' calls take (they run before the training thread).
TTS_SHARE: Final = 0.3


class TrainingState(StrEnum):
    """What the voice training is doing."""

    IDLE = "idle"
    TRAINING = "training"
    FAILED = "failed"
    NEEDS_RECORDINGS = "needs_recordings"


def missing_recordings(
    store: VoiceStore, phrases: Sequence[str], spoken: Collection[int] = ()
) -> list[str]:
    """Return the phrases with too few recordings to train without a synthesizer.

    Phrases whose index is in ``spoken`` (a TTS entity said them) need none.
    """
    return [
        phrase
        for index, phrase in enumerate(phrases)
        if index not in spoken and store.recording_count(phrase) < MIN_RECORDINGS_WITHOUT_TTS
    ]


class VoiceTrainer:
    """Runs the training of one config entry's phrases and tells its state."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        store: VoiceStore,
        voice: VoiceManager,
        tier: str,
        backend: str,
        notify: Callable[[], None],
    ) -> None:
        """Train ``store``'s phrases with the tier's speech models; call ``notify`` on change."""
        self.hass = hass
        self._entry = entry
        self._store = store
        self._voice = voice
        self._tier = tier
        self._backend = backend
        self._notify = notify
        self.state = TrainingState.IDLE
        self.progress = 0  # percent shown to the user
        self.fraction = 0.0  # of the run: the TTS entities' calls, then the training thread
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None  # the running training, if any
        self.spoken: SpokenSpeech | None = None  # what the TTS entities said in the last run
        self._speaking: asyncio.Task[SpokenSpeech] | None = None
        self._phase = (0.0, 1.0)  # progress: where the running phase starts, its share
        self._tts_voices: int | None = None
        self._cancel = threading.Event()
        self._again = False

    async def async_tts_voices(self) -> int:
        """Return how many synthesizer voices this host has (looked up once)."""
        if self._tts_voices is None:
            self._tts_voices = await self.hass.async_add_executor_job(tts_voice_count)
        return self._tts_voices

    @callback
    def async_request(self) -> None:
        """Train now; a run in progress is cancelled and started over with the latest data."""
        if self.async_interrupt():
            return
        self.progress = 0
        self.async_set_state(TrainingState.TRAINING)
        self.task = self._entry.async_create_background_task(
            self.hass, self._async_run(), "compact_ai voice training"
        )

    @callback
    def async_interrupt(self) -> bool:
        """Cancel a running training, to run again; return whether one was running."""
        if self.task is None or self.task.done():
            return False
        self._again = True
        self._cancel_all()
        return True

    @callback
    def _cancel_all(self) -> None:
        self._cancel.set()
        if self._speaking is not None:
            self._speaking.cancel()  # the TTS calls stop at once; the thread at its next step

    @callback
    def async_cancel(self) -> None:
        """Ask a running training to stop at its next step (Home Assistant is stopping)."""
        self._again = False
        self._cancel_all()

    async def async_stop(self) -> None:
        """Stop a running training and wait for its thread to end."""
        self.async_cancel()
        if self.task is not None and not self.task.done():
            await asyncio.shield(self.task)

    async def async_shutdown(self) -> None:
        """Stop a running training (on unload); its repair issues go, a reload raises them."""
        await self.async_stop()
        self.state = TrainingState.IDLE
        self.spoken = None
        self._update_issues()
        self._update_tts_issue()

    async def _async_run(self) -> None:
        while True:
            self._again = False
            self._cancel = threading.Event()
            self._phase = (0.0, 1.0)
            await self._async_train_once(self._cancel)
            if not self._again:
                return

    async def _async_train_once(self, cancel: threading.Event) -> None:
        phrases = self._store.phrases
        if phrases is None or not self._voice.available:
            self.async_set_state(TrainingState.IDLE)
            return
        use_tts = await self.async_tts_voices() > 0
        entities = self._store.tts_entities
        if not use_tts and not entities and missing_recordings(self._store, phrases):
            self.async_set_state(TrainingState.NEEDS_RECORDINGS)
            return
        revision = self._store.revision
        self.progress, self.fraction = 0, 0.0
        self.async_set_state(TrainingState.TRAINING)  # again, after a cancelled run
        spoken = SpokenSpeech()
        self.spoken = None
        self._update_tts_issue()  # an issue about entities no longer chosen goes
        if entities:
            if (said := await self._async_speak(entities, phrases, use_tts)) is None:
                self.async_set_state(TrainingState.IDLE)
                return
            spoken = self.spoken = said
            self._update_tts_issue()
            if not use_tts and missing_recordings(self._store, phrases, spoken.labels()):
                self.async_set_state(TrainingState.NEEDS_RECORDINGS)
                return
        request = TrainingRequest(
            tier=self._tier,
            backend=self._backend,
            phrases=phrases,
            recordings=self._store.recording_files(),
            out=self._store.command_set_dir,
            use_tts=use_tts,
            spoken=tuple(spoken.clips),
        )
        try:
            summary = await self.hass.async_add_executor_job(
                train, request, cancel, self._report_threadsafe
            )
            await self._store.async_mark_trained(revision, self._voice.speech_id, summary)
            await self._voice.async_use_command_set(self._store.command_set_dir)
        except TrainingCancelled:
            _LOGGER.debug("Voice command training was cancelled")
            self.async_set_state(TrainingState.IDLE)
            return
        except (EngineError, OSError) as err:
            if cancel.is_set():  # its inputs changed under it (a phrase was removed)
                self.async_set_state(TrainingState.IDLE)
                return
            _LOGGER.error("Training the voice commands failed: %s", err)
            self.async_set_state(TrainingState.FAILED, str(err))
            self.hass.bus.async_fire(
                EVENT_TRAINING, {"result": "failed", "error": str(err), "phrases": list(phrases)}
            )
            return
        _LOGGER.info("Voice commands trained in %s s: %s", summary.get("seconds"), phrases)
        self.progress = 100
        self.async_set_state(TrainingState.IDLE)
        self.hass.bus.async_fire(
            EVENT_TRAINING,
            {"result": "success", "phrases": list(phrases), "seconds": summary.get("seconds")},
        )

    async def _async_speak(
        self, entities: Sequence[str], phrases: Sequence[str], use_tts: bool
    ) -> SpokenSpeech | None:
        """Let the TTS entities speak (its own task, so a cancel stops a hanging call)."""
        share = TTS_SHARE if use_tts else 2 * TTS_SHARE
        self._phase = (0.0, share)
        self._speaking = self.hass.async_create_task(
            async_speak(self.hass, entities, phrases, self._set_progress),
            "compact_ai voice training speech",
        )
        try:
            return await self._speaking
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # Home Assistant is cancelling the training itself
            _LOGGER.debug("Voice command training was cancelled while the TTS entities spoke")
            return None
        finally:
            self._speaking = None
            self._phase = (share, 1.0 - share)

    def _report_threadsafe(self, fraction: float) -> None:
        """Progress from the training thread (0..1 of the synthesis)."""
        self.hass.loop.call_soon_threadsafe(self._set_progress, fraction)

    @callback
    def _set_progress(self, fraction: float) -> None:
        start, share = self._phase
        self.fraction = start + share * fraction
        percent = round(95 * self.fraction)
        if self.state is TrainingState.TRAINING and percent != self.progress:
            self.progress = percent
            self._notify()

    @callback
    def async_set_state(self, state: TrainingState, error: str | None = None) -> None:
        """Set the state (and error); update the repair issues and tell the listeners."""
        self.state = state
        self.error = error
        self._update_issues()
        self._notify()

    @callback
    def _update_tts_issue(self) -> None:
        """Show which TTS entities failed in the last run, and how (Settings -> Repairs)."""
        issue_id = f"{ISSUE_TTS_FAILED}_{self._entry.entry_id}"
        spoken = self.spoken
        if spoken is None or not spoken.failures:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        counted = (FAILED, TIMED_OUT, SILENT, SKIPPED)
        unusable = sum(sum(c.values()) for c in spoken.failures.values()) - sum(
            spoken.total(reason) for reason in counted
        )
        self._raise_issue(
            issue_id,
            ISSUE_TTS_FAILED,
            {
                "entities": ", ".join(sorted(spoken.failures)),
                **{reason: str(spoken.total(reason)) for reason in counted},
                "unusable": str(unusable),
                "clips": str(len(spoken.clips)),
                "calls": str(spoken.calls),
            },
        )

    @callback
    def _update_issues(self) -> None:
        """Show a failed training and missing recordings under Settings -> Repairs."""
        raised = {
            ISSUE_TRAINING_FAILED: self.state is TrainingState.FAILED,
            ISSUE_NEEDS_RECORDINGS: self.state is TrainingState.NEEDS_RECORDINGS,
        }
        missing = missing_recordings(self._store, self._store.phrases or ())
        for issue, active in raised.items():
            issue_id = f"{issue}_{self._entry.entry_id}"
            if not active:
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
                continue
            placeholders = (
                {"error": self.error or ""}
                if issue == ISSUE_TRAINING_FAILED
                else {
                    "phrases": ", ".join(missing),
                    "count": str(MIN_RECORDINGS_WITHOUT_TTS),
                }
            )
            self._raise_issue(issue_id, issue, placeholders)

    @callback
    def _raise_issue(self, issue_id: str, key: str, placeholders: dict[str, str]) -> None:
        """Show (or update) a warning under Settings -> Repairs."""
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders=placeholders,
        )

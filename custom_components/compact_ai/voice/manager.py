"""Voice commands in Home Assistant: the speech models and command set, and who to tell."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .. import const
from ..const import DOMAIN
from ..engine.errors import AudioFormatError, EngineError, InferenceError
from ..engine.voice.audio import TARGET_RATE, decode_wav
from ..engine.voice.commands import UNKNOWN, CommandRecognizer, CommandSet
from ..helpers.inference import async_infer
from .training import load_embedder

_LOGGER = logging.getLogger(__name__)

ISSUE_VOICE = "voice_models_unusable"
COMMAND_SET = "default"
MAX_SECONDS = 10.0  # audio after this is ignored
MAX_PCM_BYTES = int(MAX_SECONDS * TARGET_RATE) * 2  # 16-bit mono


@dataclass(frozen=True, slots=True)
class VoiceResult:
    """One recognition: the phrase (``None`` if no command) and how sure the model was."""

    phrase: str | None
    speech: bool  # some speech was heard (a command or not)
    confidence: float
    inference_ms: float
    samples: np.ndarray = field(repr=False, compare=False)  # what was heard, 16 kHz int16


def command_set_dir() -> Path:
    """Return the folder of the shipped command set (inside the model pack)."""
    return const.PACK_DIR / "commands" / COMMAND_SET


def load_recognizer(
    tier: str, backend: str, custom: Callable[[str], Path | None]
) -> tuple[CommandRecognizer, str, bool]:
    """Load the tier's speech models and a command set, all verified (runs in an executor).

    ``custom`` names the user's trained set for these speech models (their id), if any; it
    is used unless it fails its check, then the shipped set is. Returns the recognizer, the
    speech models' id and whether the custom set is in use.
    """
    embedder, speech_id = load_embedder(tier, backend)
    if (folder := custom(speech_id)) is not None:
        try:
            return CommandRecognizer(embedder, CommandSet.load(folder)), speech_id, True
        except EngineError as err:
            _LOGGER.warning("Your trained voice commands are unusable, using the default: %s", err)
    return CommandRecognizer(embedder, CommandSet.load(command_set_dir())), speech_id, False


def pcm_samples(data: bytes) -> np.ndarray:
    """Return 16 kHz mono int16 samples of a WAV file or of raw 16 kHz 16-bit mono PCM.

    Only the first :data:`MAX_SECONDS` are used; raises :class:`AudioFormatError`.
    """
    if data.startswith(b"RIFF"):
        return decode_wav(data, MAX_SECONDS).samples
    usable = min(len(data), MAX_PCM_BYTES) // 2 * 2
    if usable == 0:
        raise AudioFormatError("no audio was received")
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)


@dataclass
class VoiceManager:
    """Recognizes commands in an executor and tells listeners what was heard."""

    hass: HomeAssistant
    recognizer: CommandRecognizer | None
    speech_id: str = ""  # names the speech models' files; a trained set belongs to them
    custom: bool = False  # the user's trained set is in use (not the shipped one)
    error: str | None = None
    _listeners: list[Callable[[VoiceResult], None]] = field(default_factory=list)

    @classmethod
    async def async_load(
        cls,
        hass: HomeAssistant,
        tier: str,
        backend: str,
        custom: Callable[[str], Path | None] = lambda _: None,
    ) -> VoiceManager:
        """Load the models; on failure raise a repair issue and stay unavailable."""
        try:
            recognizer, speech_id, is_custom = await hass.async_add_executor_job(
                load_recognizer, tier, backend, custom
            )
        except EngineError as err:
            _LOGGER.error("The voice command models cannot be used: %s", err)
            ir.async_create_issue(
                hass,
                DOMAIN,
                ISSUE_VOICE,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_VOICE,
                translation_placeholders={"tier": tier, "error": str(err)},
            )
            return cls(hass, None, error=str(err))
        ir.async_delete_issue(hass, DOMAIN, ISSUE_VOICE)
        return cls(hass, recognizer, speech_id, is_custom)

    @property
    def phrases(self) -> tuple[str, ...]:
        """Return the phrases of the command set in use (none while unavailable)."""
        return () if self.recognizer is None else self.recognizer.command_set.phrases

    async def async_use_command_set(self, folder: Path | None) -> None:
        """Switch to the command set in ``folder`` (``None``: the shipped one); raise on failure."""
        embedder = self.loaded_recognizer().embedder
        command_set = await self.hass.async_add_executor_job(
            CommandSet.load, folder or command_set_dir()
        )
        self.recognizer = CommandRecognizer(embedder, command_set)
        self.custom = folder is not None

    def loaded_recognizer(self) -> CommandRecognizer:
        """Return the recognizer; raise :class:`InferenceError` while the models are unusable."""
        if self.recognizer is None:
            raise InferenceError(f"the voice models are unavailable: {self.error}")
        return self.recognizer

    @property
    def available(self) -> bool:
        """Whether the speech models and the command set loaded."""
        return self.recognizer is not None

    def async_add_listener(self, listener: Callable[[VoiceResult], None]) -> CALLBACK_TYPE:
        """Call ``listener`` with every result; return the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @staticmethod
    def _recognize(recognizer: CommandRecognizer, data: bytes) -> VoiceResult:
        start = time.perf_counter()
        samples = pcm_samples(data)
        result = recognizer.recognize(samples)
        elapsed = (time.perf_counter() - start) * 1000.0
        phrase = result.label if result.is_command else None
        speech = result.is_command or result.label == UNKNOWN
        return VoiceResult(phrase, speech, result.confidence, elapsed, samples)

    async def async_recognize(self, data: bytes) -> VoiceResult:
        """Recognize the command in WAV or raw PCM ``data``; raise :class:`EngineError`."""
        recognizer = self.loaded_recognizer()
        result = await async_infer(self.hass, self._recognize, recognizer, data)
        _LOGGER.debug(
            "Heard %s (%.2f) in %.0f ms", result.phrase, result.confidence, result.inference_ms
        )
        for listener in list(self._listeners):
            listener(result)
        return result

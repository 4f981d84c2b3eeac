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

from . import const
from .const import DOMAIN
from .engine.audio import TARGET_RATE, decode_wav
from .engine.backend import load_model
from .engine.commands import UNKNOWN, CommandRecognizer, CommandSet
from .engine.errors import AudioFormatError, EngineError, InferenceError
from .engine.pack import ModelPack
from .engine.speech import SpeechEmbedder

_LOGGER = logging.getLogger(__name__)

ISSUE_VOICE = "voice_models_unusable"
COMMAND_SET = "default"
MAX_SECONDS = 10.0  # audio after this is ignored
MAX_PCM_BYTES = int(MAX_SECONDS * TARGET_RATE) * 2  # 16-bit mono
MEL_TASK = "speech_mel"
EMBEDDING_TASK = "speech_embedding"


@dataclass(frozen=True, slots=True)
class VoiceResult:
    """One recognition: the phrase (``None`` if no command) and how sure the model was."""

    phrase: str | None
    speech: bool  # some speech was heard (a command or not)
    confidence: float
    inference_ms: float


def command_set_dir() -> Path:
    """Return the folder of the shipped command set (inside the model pack)."""
    return const.PACK_DIR / "commands" / COMMAND_SET


def load_recognizer(tier: str, backend: str) -> CommandRecognizer:
    """Load the tier's speech models and the command set, all verified (runs in an executor)."""
    pack = ModelPack.load(const.PACK_DIR)
    embedder = SpeechEmbedder(
        load_model(pack, pack.model(tier, MEL_TASK), backend),
        load_model(pack, pack.model(tier, EMBEDDING_TASK), backend),
    )
    return CommandRecognizer(embedder, CommandSet.load(command_set_dir()))


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
    error: str | None = None
    _listeners: list[Callable[[VoiceResult], None]] = field(default_factory=list)

    @classmethod
    async def async_load(cls, hass: HomeAssistant, tier: str, backend: str) -> VoiceManager:
        """Load the models; on failure raise a repair issue and stay unavailable."""
        try:
            recognizer = await hass.async_add_executor_job(load_recognizer, tier, backend)
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
            return cls(hass, None, str(err))
        ir.async_delete_issue(hass, DOMAIN, ISSUE_VOICE)
        return cls(hass, recognizer)

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
        result = recognizer.recognize(pcm_samples(data))
        elapsed = (time.perf_counter() - start) * 1000.0
        phrase = result.label if result.is_command else None
        speech = result.is_command or result.label == UNKNOWN
        return VoiceResult(phrase, speech, result.confidence, elapsed)

    async def async_recognize(self, data: bytes) -> VoiceResult:
        """Recognize the command in WAV or raw PCM ``data``; raise :class:`EngineError`."""
        if self.recognizer is None:
            raise InferenceError(f"the voice models are unavailable: {self.error}")
        result = await self.hass.async_add_executor_job(self._recognize, self.recognizer, data)
        _LOGGER.debug(
            "Heard %s (%.2f) in %.0f ms", result.phrase, result.confidence, result.inference_ms
        )
        for listener in list(self._listeners):
            listener(result)
        return result

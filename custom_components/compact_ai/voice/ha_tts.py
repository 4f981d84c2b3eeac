"""Speech from the user's own Home Assistant TTS entities, for training voice commands.

Home Assistant OS has no local synthesizer, but most voice users there run one Home Assistant
can call (Piper through Wyoming, a cloud TTS, ...). Every English voice such an entity offers
(phrases are English words; else its voices in Home Assistant's language) says each phrase
once and a few other words (``_unknown_``); the clips go to training like recordings, with
augmented copies. A Wyoming server (Piper) lists every voice it could download as installed and
fetches one when first asked, so of a Wyoming entity only the voices its Assist pipelines use
are asked (else its default voice); a multi-speaker one (Piper's ``libritts_r``: 904 speakers)
lends several of its speakers: more voices, more real speakers recognized (README, "More
voices, or one voice's speakers").

Engines may be slow, fail or hang: every call has a timeout, an entity that fails
:data:`GIVE_UP_AFTER` times in a row is skipped, and whatever came back is used. Calls go
through Home Assistant's TTS manager (memory cache only, so retraining the same phrases is
fast and nothing is written to the TTS disk cache). Audio is asked for as WAV (Home Assistant
converts other formats with ffmpeg) and decoded to 16 kHz mono in an executor.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
from homeassistant.components import tts
from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.components.tts.helper import get_engine_instance
from homeassistant.core import HomeAssistant

from ..engine.errors import EngineError
from ..engine.voice.audio import decode_wav, speech_segment
from ..engine.voice.training.features import SpokenClip
from ..engine.voice.training.texts import spoken_negatives, spoken_texts, spread

_LOGGER = logging.getLogger(__name__)

CALL_TIMEOUT: Final = 20.0  # seconds for one phrase (Piper on a Pi 4 needs about one)
GIVE_UP_AFTER: Final = 3  # failures in a row after which an entity's other calls are skipped
MAX_VOICES: Final = 24  # over all entities and speakers
SPEAKER: Final = "speaker"  # the option naming a speaker of a voice (Wyoming's ATTR_SPEAKER)
MAX_SECONDS: Final = 5.0  # of audio kept per clip
FALLBACK_LANGUAGE: Final = "en"  # the phrases' language; Home Assistant's if none speaks it
# Why a clip is missing, as counted in :attr:`SpokenSpeech.failures`.
FAILED, TIMED_OUT, SILENT, SKIPPED, NO_LANGUAGE, MISSING = (
    "failed", "timed_out", "silent", "skipped", "no_language", "missing",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TtsVoice:
    """One voice of a TTS entity in one language (``voice`` None: the entity's default).

    ``speaker`` names one speaker of a multi-speaker voice (None: the voice's default).
    """

    entity_id: str
    language: str
    voice: str | None
    speaker: str | None = None

    @property
    def family(self) -> str:
        """Return ``<entity>:<voice>[:<speaker>]``: calibration holds one of each entity out."""
        name = f"{self.entity_id}:{self.voice or self.language}"
        return name if self.speaker is None else f"{name}:{self.speaker}"


@dataclass(slots=True)
class SpokenSpeech:
    """What the entities said, and per entity how many clips are missing and why."""

    clips: list[SpokenClip] = field(default_factory=list)
    voices: list[TtsVoice] = field(default_factory=list)
    calls: int = 0
    failures: dict[str, Counter[str]] = field(default_factory=dict)

    def fail(self, entity_id: str, reason: str, count: int = 1) -> None:
        """Count ``count`` clips of ``entity_id`` missing for ``reason``."""
        self.failures.setdefault(entity_id, Counter())[reason] += count

    def total(self, reason: str) -> int:
        """Return how many clips are missing for ``reason`` over all entities."""
        return sum(counts[reason] for counts in self.failures.values())

    def labels(self) -> set[int]:
        """Return the labels at least one clip has."""
        return {clip.label for clip in self.clips}

    def as_dict(self) -> dict[str, Any]:
        """Return a summary for the training summary, attributes and diagnostics."""
        return {
            "voices": [voice.family for voice in self.voices],
            "calls": self.calls,
            "clips": len(self.clips),
            "failures": {entity: dict(counts) for entity, counts in self.failures.items()},
        }


def _primary(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def entity_voices(
    hass: HomeAssistant, entity_ids: Sequence[str], spoken: SpokenSpeech
) -> list[TtsVoice]:
    """Return every English voice of the entities (else those in Home Assistant's language).

    Of a Wyoming entity only the voices its Assist pipelines use (else its default voice), and
    the speakers of those. Entities that are missing or speak neither are counted in
    ``spoken``'s failures.
    """
    wanted = (FALLBACK_LANGUAGE, _primary(hass.config.language or FALLBACK_LANGUAGE))
    voices: list[TtsVoice] = []
    speakers: dict[TtsVoice, list[str]] = {}
    for entity_id in dict.fromkeys(entity_ids):
        engine = get_engine_instance(hass, entity_id)
        if not isinstance(engine, tts.TextToSpeechEntity):
            spoken.fail(entity_id, MISSING)
            continue
        languages = list(engine.supported_languages or ())
        matching = next(
            (found for code in wanted if (found := [x for x in languages if _primary(x) == code])),
            [],
        )
        if not matching:
            spoken.fail(entity_id, NO_LANGUAGE)
            continue
        listed = _wyoming_speakers(engine)  # None: not a Wyoming entity
        used = _pipeline_voices(hass, entity_id)
        seen: set[str | None] = set()
        for language in matching:
            offered = engine.async_get_supported_voices(language) or []
            ids: list[str | None] = [voice.voice_id for voice in offered]
            if listed is not None:  # asking a voice may download it: only those in use
                ids = [voice_id for voice_id in ids if voice_id in used]
            for voice_id in ids or [None]:
                if voice_id not in seen:
                    seen.add(voice_id)
                    voices.append(voice := TtsVoice(entity_id, language, voice_id))
                    speakers[voice] = (listed or {}).get(voice_id or "", [])
    return _with_speakers(voices[:MAX_VOICES], speakers)


def _with_speakers(voices: list[TtsVoice], speakers: dict[TtsVoice, list[str]]) -> list[TtsVoice]:
    """Let multi-speaker voices fill what :data:`MAX_VOICES` leaves, speakers spread out.

    The slots left go round the voices that have speakers, one at a time, so several
    multi-speaker voices share them; a voice with speakers is asked for named speakers only.
    """
    slots = dict.fromkeys(voices, 1)
    left = MAX_VOICES - len(voices)
    while left > 0 and any(slots[v] < len(speakers[v]) for v in voices):
        for voice in voices:
            if left > 0 and slots[voice] < len(speakers[voice]):
                slots[voice] += 1
                left -= 1
    named: list[TtsVoice] = []
    for voice in voices:
        picked = spread(speakers[voice], slots[voice])
        named += [replace(voice, speaker=speaker) for speaker in picked] if picked else [voice]
    return named


def _wyoming_speakers(engine: Any) -> dict[str, list[str]] | None:
    """Return the speakers of each voice of a Wyoming entity, or None for any other entity.

    Home Assistant's TTS API lists voices, not speakers; a Wyoming entity takes a ``speaker``
    option and keeps its server's description (``service.info``, the Wyoming protocol's
    ``Info``: installed programs, their voices and each voice's speakers).
    """
    if SPEAKER not in (getattr(engine, "supported_options", None) or ()):
        return None
    programs = getattr(getattr(getattr(engine, "service", None), "info", None), "tts", None)
    if programs is None:
        return None
    speakers: dict[str, list[str]] = {}
    for program in programs:
        if not getattr(program, "installed", False):
            continue
        for voice in getattr(program, "voices", None) or ():
            names = (getattr(s, "name", None) for s in getattr(voice, "speakers", None) or ())
            key = str(getattr(voice, "name", ""))
            speakers[key] = list(dict.fromkeys(str(name) for name in names if name))
    return speakers


def _pipeline_voices(hass: HomeAssistant, entity_id: str) -> set[str]:
    """Return the voices the Assist pipelines speak with through ``entity_id``."""
    if "assist_pipeline" not in hass.config.components:
        return set()
    from homeassistant.components import assist_pipeline  # loaded: nothing is imported here

    return {
        pipeline.tts_voice
        for pipeline in assist_pipeline.async_get_pipelines(hass)
        if pipeline.tts_engine == entity_id and pipeline.tts_voice
    }


def _decode(data: bytes) -> np.ndarray | None:
    """Return 16 kHz int16 samples of WAV ``data``, None without speech; raise if unusable."""
    samples = decode_wav(data, MAX_SECONDS).samples
    return samples if speech_segment(samples) is not None else None


async def _say(hass: HomeAssistant, voice: TtsVoice, text: str) -> bytes:
    """Return the WAV bytes of ``voice`` saying ``text`` (memory cache only)."""
    options: dict[str, Any] = {tts.ATTR_PREFERRED_FORMAT: "wav"}
    if voice.voice is not None:
        options[tts.ATTR_VOICE] = voice.voice
    if voice.speaker is not None:
        options[SPEAKER] = voice.speaker
    stream = hass.data[DATA_TTS_MANAGER].async_create_result_stream(
        engine=voice.entity_id, use_file_cache=False, language=voice.language, options=options
    )
    stream.async_set_message(text)
    return b"".join([chunk async for chunk in stream.async_stream_result()])


async def async_speak(
    hass: HomeAssistant,
    entity_ids: Sequence[str],
    phrases: Sequence[str],
    report: Callable[[float], None],
    negatives: int | None = None,
) -> SpokenSpeech:
    """Let every voice of ``entity_ids`` say the phrases and some other words.

    ``report`` gets the fraction of calls done. Cancelling the calling task stops at once.
    """
    spoken = SpokenSpeech()
    spoken.voices = entity_voices(hass, entity_ids, spoken)
    if negatives is None:
        negatives = spoken_negatives(len(phrases), len(spoken.voices))
    texts = await hass.async_add_executor_job(  # the word lists are read from a file once
        lambda: [spoken_texts(phrases, i, negatives) for i in range(len(spoken.voices))]
    )
    plan = [
        (voice, text, label)
        for voice, said in zip(spoken.voices, texts, strict=True)
        for text, label in said
    ]
    spoken.calls = len(plan)
    in_a_row: Counter[str] = Counter()
    for done, (voice, text, label) in enumerate(plan):
        report(done / len(plan))
        entity = voice.entity_id
        if in_a_row[entity] >= GIVE_UP_AFTER:
            spoken.fail(entity, SKIPPED)
            continue
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                data = await _say(hass, voice, text)
            samples = await hass.async_add_executor_job(_decode, data)
        except TimeoutError:
            reason: str | None = TIMED_OUT
        except EngineError as err:  # not audio, or not WAV (no ffmpeg to convert it)
            _LOGGER.debug("%s said %r in no usable audio: %s", voice.family, text, err)
            reason = FAILED
        except Exception as err:  # noqa: BLE001 - any integration's TTS may raise anything
            _LOGGER.debug("%s could not say %r: %r", voice.family, text, err)
            reason = FAILED
        else:
            reason = None if samples is not None else SILENT
        if reason is not None:
            spoken.fail(entity, reason)
            in_a_row[entity] += 1
            continue
        in_a_row[entity] = 0
        assert samples is not None
        spoken.clips.append(SpokenClip(samples, label, voice.family))
    report(1.0)
    if spoken.failures:
        _LOGGER.warning("Some TTS voices could not be used for training: %s", spoken.failures)
    return spoken

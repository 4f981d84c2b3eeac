"""A test text-to-speech integration: espeak-ng voices behind Home Assistant TTS entities.

It behaves like Wyoming Piper as Home Assistant sees it: WAV at 22,050 Hz (espeak-ng's own
rate), several voices per language (``en_US``, ``en_GB``), the voice chosen with the ``voice``
option. Entities that fail (raise, hang, return silence) stand in for broken engines.
:class:`MultiSpeakerEntity` is a Wyoming entity like Piper's: its ``service.info`` (the Wyoming
protocol's ``Info``) lists every voice as installed, one of them with many speakers (Piper's
``libritts_r``), and the ``speaker`` option picks one (here an espeak-ng variant).
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homeassistant.components import tts
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.setup import async_setup_component

ESPEAK_RATE = 22_050
# Voices by language; none is the accent training holds out or the test voice (en-us).
VOICES = {
    "en_US": {"en-029+m1": "Caribbean", "en-us-nyc+f2": "New York"},
    "en_GB": {"en-gb-x-rp+f3": "Received pronunciation"},
}
WORKS, RAISES, HANGS, SILENT = "works", "raises", "hangs", "silent"


def espeak_wav(text: str, voice: str) -> bytes:
    """Return espeak-ng's WAV (22,050 Hz mono) of ``voice`` saying ``text``."""
    return subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout


def silent_wav(seconds: float = 1.0) -> bytes:
    """Return a WAV file of digital silence at espeak-ng's rate."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(ESPEAK_RATE)
        wav.writeframes(bytes(int(seconds * ESPEAK_RATE) * 2))
    return buffer.getvalue()


class EspeakEntity(tts.TextToSpeechEntity):
    """A TTS entity whose voices are espeak-ng voices, or that fails as ``behaviour`` says."""

    _attr_default_language = "en_US"

    def __init__(self, name: str, behaviour: str) -> None:
        self._attr_supported_languages = list(VOICES)
        self._attr_supported_options = [tts.ATTR_VOICE]
        self._attr_name = name
        self._attr_unique_id = name
        self.behaviour = behaviour
        self.calls: list[tuple[str, str, str | None]] = []  # (text, language, voice)
        self.release = asyncio.Event()  # ends the hang of a hanging entity
        self.called = asyncio.Event()

    def async_get_supported_voices(self, language: str) -> list[tts.Voice] | None:
        return [tts.Voice(voice_id, name) for voice_id, name in VOICES.get(language, {}).items()]

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> tts.TtsAudioType:
        voice = options.get(tts.ATTR_VOICE)
        self.calls.append((message, language, voice))
        self.called.set()
        if self.behaviour == RAISES:
            raise HomeAssistantError("the speech server is down")
        if self.behaviour == HANGS:
            await self.release.wait()
            raise HomeAssistantError("released")
        if self.behaviour == SILENT:
            return "wav", silent_wav()
        espeak_voice = voice or next(iter(VOICES[language]))
        return "wav", await self.hass.async_add_executor_job(espeak_wav, message, espeak_voice)


# One multi-speaker voice; its speakers are espeak-ng variants (``en-gb-scotland+<speaker>``).
MULTI_VOICE = "en-gb-scotland"
SPEAKERS = (
    "Adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "Antonio", "Auntie", "Belinda",
    "Benjamin", "Boris", "Caleb", "David", "Denis", "Diogo", "Ed", "Edward", "Gene", "Gustave",
    "Henrique", "Hugo", "Iven", "Jacky", "John", "Lee", "Linda", "Marco", "Mario", "Max", "Mike",
)  # fmt: skip
MULTI_SPEAKER = "multi_speaker"
PLAIN_VOICES = ("en-029", "en-gb-x-rp")  # listed beside it, never downloaded: never asked
DEFAULT_VOICE = "en-gb-x-gbclan"  # what the server speaks with when no voice is named


@dataclass
class Speaker:
    """A speaker of a voice, as the Wyoming protocol's ``TtsVoiceSpeaker``."""

    name: str


@dataclass
class WyomingVoice:
    """A voice as Wyoming's ``TtsVoice`` describes it (name, languages, speakers)."""

    name: str
    languages: list[str]
    speakers: list[Speaker] | None = None


@dataclass
class WyomingProgram:
    """A TTS program of a Wyoming server's ``Info`` (Piper), with its voices."""

    voices: list[WyomingVoice]
    installed: bool = True


@dataclass
class WyomingInfo:
    """What a Wyoming server describes itself as: here only its TTS programs."""

    tts: list[WyomingProgram] = field(default_factory=list)


@dataclass
class WyomingService:
    """What a Wyoming TTS entity keeps as ``service``: the server's ``info``."""

    info: WyomingInfo


class MultiSpeakerEntity(EspeakEntity):
    """A Wyoming entity: every voice listed as installed, one with many speakers."""

    def __init__(self, name: str, behaviour: str) -> None:
        super().__init__(name, WORKS)
        self._attr_supported_languages = ["en_GB"]
        self._attr_default_language = "en_GB"
        self._attr_supported_options = [tts.ATTR_VOICE, "speaker"]
        listed = [WyomingVoice(MULTI_VOICE, ["en_GB"], [Speaker(n) for n in SPEAKERS])]
        listed += [WyomingVoice(voice, ["en_GB"]) for voice in PLAIN_VOICES]
        self.service = WyomingService(WyomingInfo([WyomingProgram(listed)]))
        self.speakers: list[str | None] = []  # the speaker option of each call

    def async_get_supported_voices(self, language: str) -> list[tts.Voice] | None:
        """Every voice its server's ``info`` lists in ``language``, as Wyoming's entity does."""
        listed = self.service.info.tts[0].voices
        return [tts.Voice(v.name, v.name) for v in listed if language in v.languages]

    async def async_get_tts_audio(
        self, message: str, language: str, options: dict[str, Any]
    ) -> tts.TtsAudioType:
        voice, speaker = options.get(tts.ATTR_VOICE), options.get("speaker")
        self.calls.append((message, language, voice))
        self.speakers.append(speaker)
        espeak_voice = f"{voice}+{speaker}" if speaker else voice or DEFAULT_VOICE
        return "wav", await self.hass.async_add_executor_job(espeak_wav, message, espeak_voice)


async def set_up_tts(hass: HomeAssistant, entities: dict[str, str]) -> dict[str, EspeakEntity]:
    """Set up Home Assistant's TTS and one entity per ``name: behaviour``; return them by id.

    The behaviour :data:`MULTI_SPEAKER` makes a :class:`MultiSpeakerEntity`.
    """
    made = [
        (MultiSpeakerEntity if behaviour == MULTI_SPEAKER else EspeakEntity)(name, behaviour)
        for name, behaviour in entities.items()
    ]
    config = Path(hass.config.config_dir)  # TTS makes its cache folder there
    await hass.async_add_executor_job(lambda: config.mkdir(parents=True, exist_ok=True))
    assert await async_setup_component(hass, "tts", {})
    await hass.data[DATA_COMPONENT].async_add_entities(made)
    await hass.async_block_till_done()
    by_id = {entity.entity_id: entity for entity in made}
    assert len(by_id) == len(made)
    return by_id

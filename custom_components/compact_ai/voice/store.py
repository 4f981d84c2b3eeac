"""The user's voice commands, kept in Home Assistant's private storage.

The phrase list and what is known about each recording live in a private ``.storage`` file;
the recordings (16 kHz mono WAV, cut around the speech) and the trained command set live in
the private folder ``.storage/compact_ai.voice/``. No stored phrases means the shipped
default command set is used.
"""

from __future__ import annotations

import io
import re
import shutil
import uuid
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN
from ..engine.voice.audio import TARGET_RATE, speech_segment
from ..engine.voice.recording import MAX_CLIPPED_SHARE, clipped_share
from ..errors import UserError
from ..helpers.store_check import StoredDataError, async_load_checked, expect

STORAGE_VERSION: Final = 1
STORAGE_KEY: Final = f"{DOMAIN}.voice_commands"
FOLDER_NAME: Final = f"{DOMAIN}.voice"
MAX_PHRASES: Final = 20
MAX_WORDS: Final = 5
MAX_PHRASE_LENGTH: Final = 40
MAX_RECORDINGS: Final = 10  # per phrase
MIN_RECORDINGS_WITHOUT_TTS: Final = 3
PADDING: Final = TARGET_RATE // 2  # kept before and after the speech of a recording
_PHRASE: Final = re.compile(r"[a-z']+(?: [a-z']+)*")


class VoiceError(UserError):
    """A request about voice commands that cannot be fulfilled."""


def normalize_phrase(text: str) -> str:
    """Return ``text`` lower-cased with single spaces, or raise :class:`VoiceError`."""
    phrase = " ".join(text.lower().split())
    if len(phrase) > MAX_PHRASE_LENGTH or len(phrase.split()) > MAX_WORDS:
        raise VoiceError("phrase_too_long", phrase=phrase[:MAX_PHRASE_LENGTH])
    if not _PHRASE.fullmatch(phrase):
        raise VoiceError("phrase_invalid", phrase=phrase)
    return phrase


def phrase_list(texts: list[str]) -> tuple[str, ...]:
    """Return the normalized phrases of ``texts`` (blank entries skipped); check the list."""
    phrases: list[str] = []
    for text in texts:
        if not text.strip():
            continue
        phrase = normalize_phrase(text)
        if phrase in phrases:
            raise VoiceError("phrase_duplicate", phrase=phrase)
        phrases.append(phrase)
    if len(phrases) > MAX_PHRASES:
        raise VoiceError("too_many_phrases", limit=str(MAX_PHRASES))
    return tuple(phrases)


def clip_speech(samples: np.ndarray) -> np.ndarray:
    """Return the speech of 16 kHz int16 ``samples`` with a little context.

    No speech, or speech driven into the limit (its harmonics are not the phrase's), raises.
    """
    segment = speech_segment(samples)
    if segment is None:
        raise VoiceError("no_speech")
    start, end = segment
    share = clipped_share(samples[start:end])
    if share > MAX_CLIPPED_SHARE:
        raise VoiceError("recording_clipped", share=f"{share:.0%}")
    return samples[max(0, start - PADDING) : end + PADDING]


def wav_bytes(samples: np.ndarray) -> bytes:
    """Return a 16 kHz mono 16-bit WAV file of int16 ``samples``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(TARGET_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


@dataclass(slots=True)
class Recording:
    """One of the user's recordings of a phrase (the WAV file is in the phrase's folder)."""

    file: str
    added: str
    source: str  # "file" or "voice" (captured from the speech-to-text entity)


class _VoiceStore(Store[dict[str, Any]]):
    """The storage file, with a migration hook for future versions."""

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        """Migrate stored data written by an older version of the integration."""
        return old_data


class VoiceStore:
    """Custom phrases, their recordings and what the trained custom set was made from."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store (private file) and name the private folder."""
        self._hass = hass
        self._store = _VoiceStore(
            hass, STORAGE_VERSION, STORAGE_KEY, private=True, atomic_writes=True
        )
        self.folder = Path(hass.config.path(".storage", FOLDER_NAME))
        self.phrases: tuple[str, ...] | None = None
        self.recordings: dict[str, list[Recording]] = {}
        self.revision = 0  # counts changes; a trained set is current if it has this revision
        self.trained: dict[str, Any] | None = None
        self.tts_entities: tuple[str, ...] = ()  # Home Assistant TTS entities that speak too

    @property
    def recordings_dir(self) -> Path:
        """Return the folder holding ``<phrase>/<id>.wav``."""
        return self.folder / "recordings"

    @property
    def command_set_dir(self) -> Path:
        """Return the folder of the trained custom command set."""
        return self.folder / "command_set"

    async def async_load(self) -> None:
        """Read the stored voice commands; a damaged store is a repair issue and starts empty."""
        loaded = await async_load_checked(self._hass, self._store, _parse)
        self.phrases, self.recordings, self.revision, self.trained, self.tts_entities = loaded

    async def async_save(self) -> None:
        """Write the voice commands to the private storage file."""
        await self._store.async_save(
            {
                "phrases": list(self.phrases) if self.phrases is not None else None,
                "recordings": {
                    phrase: [asdict(item) for item in items]
                    for phrase, items in self.recordings.items()
                },
                "revision": self.revision,
                "trained": self.trained,
                "tts_entities": list(self.tts_entities),
            }
        )

    def custom_set(self, speech_id: str) -> Path | None:
        """Return the trained custom set's folder if it suits the speech models ``speech_id``."""
        if self.phrases is None or self.trained is None or self.trained["speech"] != speech_id:
            return None
        return self.command_set_dir

    def needs_training(self, speech_id: str) -> bool:
        """Return whether custom phrases exist that no current trained set covers."""
        return self.phrases is not None and (
            self.custom_set(speech_id) is None or self.trained_revision != self.revision
        )

    @property
    def trained_revision(self) -> int | None:
        """Return the revision the trained custom set was made from."""
        return None if self.trained is None else int(self.trained["revision"])

    def recording_count(self, phrase: str) -> int:
        """Return how many recordings ``phrase`` has."""
        return len(self.recordings.get(phrase, []))

    def recording_files(self) -> dict[str, list[Path]]:
        """Return the WAV files of every phrase of the list."""
        return {
            phrase: [self.recordings_dir / phrase / item.file for item in self.recordings[phrase]]
            for phrase in self.phrases or ()
            if phrase in self.recordings
        }

    async def async_set_phrases(self, phrases: tuple[str, ...] | None) -> None:
        """Use ``phrases`` (``None``: the default set); drop recordings of phrases left out."""
        dropped = [p for p in self.recordings if phrases is None or p not in phrases]
        for phrase in dropped:
            del self.recordings[phrase]
        self.phrases = phrases
        if phrases is None:
            self.trained = None
        self.revision += 1
        await self.async_save()
        folders = [self.recordings_dir / phrase for phrase in dropped]
        if phrases is None:
            folders.append(self.command_set_dir)
        await self._hass.async_add_executor_job(_remove_folders, folders)

    async def async_set_tts_entities(self, entities: tuple[str, ...]) -> bool:
        """Use ``entities`` to speak the phrases in training; return whether they changed."""
        if entities == self.tts_entities:
            return False
        self.tts_entities = entities
        self.revision += 1
        await self.async_save()
        return True

    async def async_add_recording(self, phrase: str, speech: np.ndarray, source: str) -> int:
        """Save ``speech`` (cut by :func:`clip_speech`) as a recording of ``phrase``.

        Return the new count.
        """
        if self.recording_count(phrase) >= MAX_RECORDINGS:
            raise VoiceError("recordings_full", phrase=phrase, limit=str(MAX_RECORDINGS))
        data = wav_bytes(speech)
        name = f"{uuid.uuid4().hex}.wav"
        await self._hass.async_add_executor_job(
            _write_file, self.recordings_dir / phrase / name, data
        )
        self.recordings.setdefault(phrase, []).append(
            Recording(name, dt_util.utcnow().isoformat(), source)
        )
        self.revision += 1
        await self.async_save()
        return self.recording_count(phrase)

    async def async_mark_trained(
        self, revision: int, speech_id: str, summary: dict[str, Any]
    ) -> None:
        """Remember that the custom set in :attr:`command_set_dir` was trained."""
        self.trained = {
            "revision": revision,
            "speech": speech_id,
            "finished": dt_util.utcnow().isoformat(),
            "seconds": summary.get("seconds"),
            "clips": summary.get("clips"),
            "recordings": summary.get("recordings"),
            "validation": summary.get("validation", {}),
        }
        await self.async_save()


def _stored_phrase(value: Any) -> str:
    """Return a stored phrase; one that is not a phrase (it names a folder) raises."""
    if not _PHRASE.fullmatch(expect(value, str, "phrase")):
        raise StoredDataError(f"{value!r} is not a phrase")
    return str(value)


def _parse(
    raw: dict[str, Any],
) -> tuple[
    tuple[str, ...] | None, dict[str, list[Recording]], int, dict[str, Any] | None, tuple[str, ...]
]:
    """Return phrases, recordings, revision, training and TTS entities; a wrong shape raises."""
    phrases = raw.get("phrases")
    if phrases is not None:
        phrases = tuple(_stored_phrase(p) for p in expect(phrases, list, "phrases"))
    recordings: dict[str, list[Recording]] = {}
    for phrase, items in expect(raw.get("recordings", {}), dict, "recordings").items():
        recordings[_stored_phrase(phrase)] = []
        for item in expect(items, list, f"recordings of {phrase!r}"):
            fields = {
                key: expect(expect(item, dict, "recording").get(key), str, f"recording {key}")
                for key in ("file", "added", "source")
            }
            if Path(fields["file"]).name != fields["file"]:
                raise StoredDataError(f"recording file {fields['file']!r} is not a file name")
            recordings[phrase].append(Recording(**fields))
    trained = raw.get("trained")
    if trained is not None:
        expect(trained, dict, "trained")
        expect(trained.get("revision"), int, "trained revision")
        expect(trained.get("speech"), str, "trained speech models")
    entities = tuple(
        expect(entity, str, "TTS entity")
        for entity in expect(raw.get("tts_entities", []), list, "TTS entities")
    )
    return phrases, recordings, expect(raw.get("revision", 0), int, "revision"), trained, entities


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _remove_folders(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)

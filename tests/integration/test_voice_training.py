"""The user's own voice commands: phrases, recordings, training on the host, persistence.

Training is real (espeak-ng, flite and festival voices, the shipped speech models) but with a
tiny plan (:func:`tiny_training`); the test utterances are spoken by a voice family that
training leaves out, so recognizing them means the new set generalizes to an unseen voice.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import wave
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
import voluptuous as vol
from homeassistant.components import stt, wake_word
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.compact_ai.const import CONF_PHRASES, CONF_TIER, DOMAIN
from custom_components.compact_ai.engine.errors import TrainingError
from custom_components.compact_ai.engine.voice.audio import decode_wav
from custom_components.compact_ai.engine.voice.training import DEFAULT_PHRASES
from custom_components.compact_ai.voice import (
    store as voice_store,
    trainer as voice_trainer,
    training as voice_training,
)
from custom_components.compact_ai.voice.commands import VoiceCommands
from custom_components.compact_ai.voice.store import STORAGE_KEY
from custom_components.compact_ai.voice.trainer import (
    EVENT_TRAINING,
    ISSUE_NEEDS_RECORDINGS,
    ISSUE_TRAINING_FAILED,
)
from custom_components.compact_ai.voice.training import TrainingRequest, TrainingSize

from .common import call, set_up_entry, transcribe

WAKE = "wake_word.compact_ai_wake_phrases"
VOICE_EVENT = "event.compact_ai_voice_command"
TRAINING_SENSOR = "sensor.compact_ai_voice_training"
RATE = 16_000
HELD_OUT = "espeak-ng:en-us"  # training never hears this accent (any variant)
TEST_VOICE = "en-us+m3"
PHRASES = ["stop", "open the garage", "good night"]
TIMEOUT = 300.0
STOP_VOICES = ("en-gb", "en-029", "en-gb-scotland")  # recordings of "stop"


def speak(text: str, voice: str = TEST_VOICE) -> np.ndarray:
    """Return 16 kHz int16 samples of espeak-ng saying ``text`` with half a second of silence."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], capture_output=True, check=True
    ).stdout
    return np.concatenate([np.zeros(RATE // 4, np.int16), decode_wav(wav).samples,
                           np.zeros(RATE // 2, np.int16)])  # fmt: skip


def wav_file(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


@pytest.fixture(autouse=True)
def tiny_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Train with a tiny plan that leaves the test voice's accent out."""
    monkeypatch.setattr(
        voice_training, "SIZE", TrainingSize(per_phrase=30, negatives=60, hold_out=(HELD_OUT,))
    )


@pytest.fixture(autouse=True)
def private_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Give each test its own config folder (recordings and trained sets are files there)."""
    hass.config.config_dir = str(tmp_path / "config")


@pytest.fixture(scope="module")
def utterances() -> dict[str, bytes]:
    texts = {*PHRASES, "lights on", "yes"}
    return {text: speak(text).astype("<i2").tobytes() for text in texts}


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """WAV files: a spoken phrase, silence and a broken one."""
    folder = tmp_path_factory.mktemp("audio")
    wav_file(folder / "garage.wav", speak("open the garage", "en-gb"))
    for voice in STOP_VOICES:
        wav_file(folder / f"stop-{voice}.wav", speak("stop", voice))
    wav_file(folder / "silent.wav", np.zeros(RATE, np.int16))
    (folder / "bad.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    return folder


@pytest.fixture
def audio_dir(hass: HomeAssistant, audio_files: Path) -> Path:
    """The WAV files' folder, which Home Assistant may read."""
    hass.config.allowlist_external_dirs = {str(audio_files)}
    return audio_files


def commands(entry: MockConfigEntry) -> VoiceCommands:
    result: VoiceCommands = entry.runtime_data.commands
    return result


async def trained(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Wait for the training to end; return the training sensor's attributes."""
    task = commands(entry).trainer.task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), TIMEOUT)
    await hass.async_block_till_done()
    state = hass.states.get(TRAINING_SENSOR)
    assert state.state != "training"
    return dict(state.attributes) | {"state": state.state}


def repair(hass: HomeAssistant, entry: MockConfigEntry, issue: str) -> ir.IssueEntry | None:
    """Return the entry's repair issue ``issue`` if it is raised."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{issue}_{entry.entry_id}")


async def set_phrases(hass: HomeAssistant, entry: MockConfigEntry, phrases: list[str]) -> Any:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "voice"}
    )
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_PHRASES: phrases}
    )


async def test_new_phrases_are_trained_recognized_and_kept(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    assert (await transcribe(hass, utterances["lights on"])).text == "lights on"
    finished: list[Event] = []
    hass.bus.async_listen(EVENT_TRAINING, finished.append)

    result = await set_phrases(hass, entry, [" Open  the Garage", "stop", "", "good night"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hass.states.get(TRAINING_SENSOR).state == "training"
    state = await trained(hass, entry)
    assert state["state"] == "idle", state.get("error")
    assert state["command_set"] == "custom"
    assert state["phrases"] == ["open the garage", "stop", "good night"]
    assert state["progress"] == 100
    assert [event.data["result"] for event in finished] == ["success"]

    for phrase in PHRASES:
        result = await transcribe(hass, utterances[phrase])
        assert result == stt.SpeechResult(phrase, stt.SpeechResultState.SUCCESS)
        assert hass.states.get(VOICE_EVENT).attributes["phrase"] == phrase
    wake = wake_word.async_get_wake_word_detection_entity(hass, WAKE)
    assert wake is not None
    assert [word.id for word in await wake.get_supported_wake_words()] == list(state["phrases"])

    # Kept when the tier changes (the entry reloads with that tier's speech models).
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "settings"}
    )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {CONF_TIER: "fast", "cameras": [], "scan_interval": 0, "advanced": {"backend": "auto"}},
    )
    await hass.async_block_till_done()
    assert entry.runtime_data.tier == "fast"
    assert commands(entry).trainer.task is None  # same speech models: nothing to retrain
    assert hass.states.get(TRAINING_SENSOR).attributes["command_set"] == "custom"
    result = await transcribe(hass, utterances["open the garage"])
    assert result.text == "open the garage"

    # The options page shows the user's phrases; reordering them changes nothing.
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "voice"}
    )
    assert flow["step_id"] == "voice"
    assert int(flow["description_placeholders"]["minutes"]) >= 1
    key = next(k for k in flow["data_schema"].schema if k == CONF_PHRASES)
    assert key.description["suggested_value"] == ["open the garage", "stop", "good night"]
    await hass.config_entries.options.async_configure(flow["flow_id"], {CONF_PHRASES: PHRASES})
    assert commands(entry).trainer.task is None

    # Removing a phrase retrains; removing all goes back to the default set.
    response = await call(hass, "remove_voice_phrase", phrase="Good Night")
    assert response["phrases"] == ["open the garage", "stop"]
    assert (await trained(hass, entry))["phrases"] == ["open the garage", "stop"]
    assert commands(entry).voice.phrases == ("open the garage", "stop")
    result = await transcribe(hass, utterances["open the garage"])
    assert result.text == "open the garage"
    response = await call(hass, "remove_voice_phrase", phrase="stop")
    assert response["state"] == "training"
    response = await call(hass, "remove_voice_phrase", phrase="open the garage")
    assert response["state"] == "idle"  # the training of ["open the garage"] was cancelled
    assert response["command_set"] == "default"
    assert response["phrases"] == list(DEFAULT_PHRASES)
    assert not (Path(hass.config.path(".storage", "compact_ai.voice")) / "command_set").exists()
    assert (await transcribe(hass, utterances["lights on"])).text == "lights on"
    assert [event.data["result"] for event in finished] == ["success", "success"]


async def test_phrase_services_validate_and_reset(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voice_store, "MAX_PHRASES", len(DEFAULT_PHRASES) + 1)
    for phrase, key in (
        ("open the door please now really", "phrase_too_long"),
        ("turn on 2 lights", "phrase_invalid"),
        ("_unknown_", "phrase_invalid"),
        ("stop", "phrase_exists"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "add_voice_phrase", phrase=phrase)
        assert err.value.translation_key == key
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "remove_voice_phrase", phrase="fly away")
    assert err.value.translation_key == "phrase_not_found"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "train_voice_commands")
    assert err.value.translation_key == "default_set_in_use"
    assert hass_storage.get(STORAGE_KEY) is None  # nothing was changed

    response = await call(hass, "add_voice_phrase", phrase="Good Night")
    assert response["phrases"] == [*DEFAULT_PHRASES, "good night"]
    assert response["state"] == "training"
    assert hass_storage[STORAGE_KEY]["data"]["phrases"][-1] == "good night"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "add_voice_phrase", phrase="good morning")
    assert err.value.translation_key == "too_many_phrases"
    response = await call(hass, "train_voice_commands")  # starts over
    assert response["state"] == "training"
    response = await call(hass, "reset_voice_commands")
    assert response["state"] == "idle"
    assert response["phrases"] == list(DEFAULT_PHRASES)
    assert hass_storage[STORAGE_KEY]["data"]["phrases"] is None
    assert commands(entry).trainer.task.done()


async def test_options_page_validates_phrases(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    for phrases, error in (
        (["stop", "Stop"], "phrase_duplicate"),
        (["lights on", "switch the big lights on now"], "phrase_too_long"),
        (["café"], "phrase_invalid"),
        ([f"word {chr(97 + i)}" for i in range(21)], "too_many_phrases"),
    ):
        result = await set_phrases(hass, entry, phrases)
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_PHRASES: error}
    assert commands(entry).trainer.task is None
    # The untouched default list or an empty one keeps the shipped set.
    for phrases in (list(reversed(DEFAULT_PHRASES)), []):
        result = await set_phrases(hass, entry, phrases)
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert commands(entry).trainer.task is None
        assert not commands(entry).custom


async def test_voice_page_needs_the_voice_models(hass: HomeAssistant, tmp_path: Path) -> None:
    entry = MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced"})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "voice"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "voice_unavailable"


async def test_recordings_from_files(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    audio_dir: Path,
    hass_storage: dict[str, Any],
    hass_client: Any,
    utterances: dict[str, bytes],
) -> None:
    good, silent, garbage = (audio_dir / name for name in ("garage.wav", "silent.wav", "bad.wav"))
    outside = Path(hass.config.path("garage.wav"))  # not in allowlist_external_dirs
    await set_phrases(hass, entry, ["open the garage", "stop"])
    for file, phrase, key in (
        (good, "close the garage", "phrase_not_found"),
        (outside, "open the garage", "path_not_allowed"),
        (garbage, "open the garage", "bad_audio"),
        (audio_dir / "missing.wav", "open the garage", "file_unreadable"),
        (silent, "open the garage", "no_speech"),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "add_voice_recording", phrase=phrase, file=str(file))
        assert err.value.translation_key == key
    assert commands(entry).store.recording_count("open the garage") == 0

    response = await call(hass, "add_voice_recording", phrase="Open the garage", file=str(good))
    assert response["recordings"]["open the garage"] == 1
    assert response["state"] == "training"
    stored = hass_storage[STORAGE_KEY]["data"]["recordings"]["open the garage"]
    assert [item["source"] for item in stored] == ["file"]
    folder = Path(hass.config.path(".storage", "compact_ai.voice", "recordings", "open the garage"))
    data = await hass.async_add_executor_job((folder / stored[0]["file"]).read_bytes)
    kept = decode_wav(data).samples
    assert 0.5 < len(kept) / RATE < 3.0  # cut around the speech

    # The next two utterances sent to speech-to-text become recordings of "stop".
    response = await call(hass, "record_voice_samples", phrase="stop", count=2)
    assert response["capturing"] == "stop"
    assert response["capture_remaining"] == 2
    assert (await transcribe(hass, bytes(RATE))).result is stt.SpeechResultState.ERROR  # silence
    for _ in range(2):
        result = await transcribe(hass, utterances["stop"])
        assert result.result is stt.SpeechResultState.SUCCESS  # still answers
    await hass.async_block_till_done()
    assert hass.states.get(TRAINING_SENSOR).attributes["capturing"] is None
    stored = hass_storage[STORAGE_KEY]["data"]["recordings"]
    assert [item["source"] for item in stored["stop"]] == ["voice", "voice"]
    state = await trained(hass, entry)
    assert state["state"] == "idle"
    assert state["recordings"] == {"open the garage": 1, "stop": 2}
    assert commands(entry).store.trained["recordings"] == 3
    assert (await transcribe(hass, utterances["open the garage"])).text == "open the garage"

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    voice = diagnostics["voice"]
    assert voice["phrases"] == ["open the garage", "stop"]
    assert voice["recordings"] == {"open the garage": 1, "stop": 2}
    assert voice["trained"]["recordings"] == 3
    assert ".wav" not in str(diagnostics)  # no recordings, not even their names


async def test_failed_training_keeps_the_previous_set(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    finished: list[Event] = []
    hass.bus.async_listen(EVENT_TRAINING, finished.append)
    with patch(
        "custom_components.compact_ai.voice.training.train_command_set",
        side_effect=TrainingError("the synthesizer crashed"),
    ):
        await call(hass, "add_voice_phrase", phrase="good night")
        state = await trained(hass, entry)
    assert state["state"] == "failed"
    assert state["error"] == "the synthesizer crashed"
    assert state["command_set"] == "default"
    assert [event.data["result"] for event in finished] == ["failed"]
    issue = repair(hass, entry, ISSUE_TRAINING_FAILED)
    assert issue is not None
    assert issue.translation_placeholders == {"error": "the synthesizer crashed"}
    result = await transcribe(hass, utterances["yes"])
    assert result == stt.SpeechResult("yes", stt.SpeechResultState.SUCCESS)
    folder = Path(hass.config.path(".storage", "compact_ai.voice"))
    leftovers = await hass.async_add_executor_job(lambda: list(folder.glob("training-*")))
    assert leftovers == []

    # Training again succeeds and the repair goes away.
    await call(hass, "train_voice_commands")
    assert (await trained(hass, entry))["state"] == "idle"
    assert repair(hass, entry, ISSUE_TRAINING_FAILED) is None
    assert [event.data["result"] for event in finished] == ["failed", "success"]


async def test_unload_during_training_stops_it(
    hass: HomeAssistant, entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(voice_training, "SIZE", TrainingSize(per_phrase=2000))
    synthesized = threading.Event()  # the first clips are synthesized

    def train(request: TrainingRequest, cancel: threading.Event, report: Any) -> Any:
        def tell(fraction: float) -> None:
            report(fraction)
            if fraction > 0:
                synthesized.set()

        return voice_training.train(request, cancel, tell)

    monkeypatch.setattr(voice_trainer, "train", train)
    await call(hass, "add_voice_phrase", phrase="good night")
    assert await hass.async_add_executor_job(synthesized.wait, TIMEOUT)
    task = commands(entry).trainer.task
    assert await asyncio.wait_for(hass.config_entries.async_unload(entry.entry_id), 120)
    assert task.done()
    folder = Path(hass.config.path(".storage", "compact_ai.voice"))
    left = await hass.async_add_executor_job(lambda: sorted(p.name for p in folder.iterdir()))
    assert left == []  # no command set, no scratch folder

    # Set up again: the phrases were kept and training resumes.
    monkeypatch.setattr(voice_training, "SIZE", TrainingSize(per_phrase=1, negatives=10))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert commands(entry).phrases[-1] == "good night"
    assert hass.states.get(TRAINING_SENSOR).state == "training"
    await commands(entry).async_shutdown()
    assert hass.states.get(TRAINING_SENSOR).state == "idle"


async def test_without_a_synthesizer_recordings_are_needed(
    hass: HomeAssistant,
    audio_dir: Path,
    hass_storage: dict[str, Any],
    utterances: dict[str, bytes],
) -> None:
    with patch("custom_components.compact_ai.voice.training.available_voices", return_value=[]):
        entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
        flow = await hass.config_entries.options.async_init(entry.entry_id)
        flow = await hass.config_entries.options.async_configure(
            flow["flow_id"], {"next_step_id": "voice"}
        )
        assert flow["step_id"] == "voice_no_tts"
        assert flow["description_placeholders"]["missing"] == ", ".join(DEFAULT_PHRASES)
        flow = await hass.config_entries.options.async_configure(
            flow["flow_id"], {CONF_PHRASES: ["open the garage", "stop"]}
        )
        assert (await trained(hass, entry))["state"] == "needs_recordings"
        issue = repair(hass, entry, ISSUE_NEEDS_RECORDINGS)
        assert issue is not None
        assert issue.translation_placeholders == {"phrases": "open the garage, stop", "count": "3"}

        files = {"open the garage": audio_dir / "garage.wav"}
        for voice in STOP_VOICES:
            files[f"stop {voice}"] = audio_dir / f"stop-{voice}.wav"
        for _ in range(2):
            await call(
                hass,
                "add_voice_recording",
                phrase="open the garage",
                file=str(files["open the garage"]),
            )
        for name, file in files.items():
            if name.startswith("stop"):
                await call(hass, "add_voice_recording", phrase="stop", file=str(file))
        assert (await trained(hass, entry))["state"] == "needs_recordings"
        await call(
            hass,
            "add_voice_recording",
            phrase="open the garage",
            file=str(files["open the garage"]),
        )
        state = await trained(hass, entry)
    assert state["state"] == "idle", state["error"]
    assert state["command_set"] == "custom"
    assert repair(hass, entry, ISSUE_NEEDS_RECORDINGS) is None
    trained_with = commands(entry).store.trained
    assert trained_with["recordings"] == 6
    assert trained_with["clips"] < 100  # recordings and their copies, no synthesized speech
    assert (await transcribe(hass, utterances["open the garage"])).text == "open the garage"

    # A damaged set is not used but retrained.
    head = commands(entry).store.command_set_dir / "head.npz"
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_add_executor_job(head.write_bytes, b"damaged")
    with patch("custom_components.compact_ai.voice.training.available_voices", return_value=[]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert hass.states.get(TRAINING_SENSOR).attributes["command_set"] == "default"
        assert (await trained(hass, entry))["command_set"] == "custom"

    # Other speech models (a new tier or pack): the set is not used but retrained.
    data = hass_storage[STORAGE_KEY]["data"]
    data["trained"]["speech"] = "other models"
    await hass.config_entries.async_unload(entry.entry_id)
    hass_storage[STORAGE_KEY]["data"] = data
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(TRAINING_SENSOR)
    assert (state.state, state.attributes["command_set"]) == ("training", "default")
    await commands(entry).async_shutdown()


async def test_recordings_of_default_phrases_and_limits(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    audio_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voice_store, "MAX_RECORDINGS", 1)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "record_voice_samples", phrase="fly away", count=2)
    assert err.value.translation_key == "phrase_not_found"
    assert not commands(entry).custom

    # A recording of a default phrase makes the default list the user's own.
    garage = str(audio_dir / "garage.wav")
    response = await call(hass, "add_voice_recording", phrase="yes", file=garage)
    assert response["phrases"] == list(DEFAULT_PHRASES)
    assert response["recordings"]["yes"] == 1
    assert commands(entry).custom
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "add_voice_recording", phrase="yes", file=garage)
    assert err.value.translation_key == "recordings_full"
    folder = commands(entry).store.recordings_dir / "yes"
    assert await hass.async_add_executor_job(folder.exists)

    # Removing the phrase deletes its recordings.
    response = await call(hass, "remove_voice_phrase", phrase="yes")
    assert "yes" not in response["recordings"]
    assert not await hass.async_add_executor_job(folder.exists)
    await commands(entry).async_shutdown()


async def test_recording_utterances_ends_after_its_time_limit(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    await set_phrases(hass, entry, ["stop", "good night"])
    await trained(hass, entry)
    response = await call(hass, "record_voice_samples", phrase="stop", count=3, minutes=5)
    assert response["capture_remaining"] == 3
    await transcribe(hass, utterances["stop"])
    await hass.async_block_till_done()
    assert hass.states.get(TRAINING_SENSOR).attributes["capture_remaining"] == 2

    # Nobody says it again: after 5 minutes the capture ends and the one recording is trained.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=4))
    await hass.async_block_till_done()
    assert hass.states.get(TRAINING_SENSOR).attributes["capturing"] == "stop"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5, seconds=1))
    await hass.async_block_till_done()
    state = hass.states.get(TRAINING_SENSOR)
    assert state.attributes["capturing"] is None
    assert state.state == "training"
    state = await trained(hass, entry)
    assert state["state"] == "idle"
    assert state["recordings"] == {"stop": 1, "good night": 0}
    assert commands(entry).store.trained["recordings"] == 1
    await transcribe(hass, utterances["stop"])  # no longer kept
    assert commands(entry).store.recording_count("stop") == 1

    # A capture that heard nothing ends without training; a new one replaces an old one.
    await call(hass, "record_voice_samples", phrase="stop", count=2, minutes=1)
    await call(hass, "record_voice_samples", phrase="good night", count=1, minutes=30)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=2))
    await hass.async_block_till_done()
    assert hass.states.get(TRAINING_SENSOR).attributes["capturing"] == "good night"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=31))
    await hass.async_block_till_done()
    state = hass.states.get(TRAINING_SENSOR)
    assert (state.state, state.attributes["capturing"]) == ("idle", None)
    with pytest.raises(vol.Invalid):
        await call(hass, "record_voice_samples", phrase="stop", minutes=0)

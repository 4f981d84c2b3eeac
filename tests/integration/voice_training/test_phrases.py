"""The user's phrases and recordings: actions, the options page, files and spoken samples.

See test_training.py for how training runs in these tests.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components import stt
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)

from custom_components.compact_ai.const import CONF_PHRASES, CONF_TIER, DOMAIN
from custom_components.compact_ai.engine.voice.audio import decode_wav
from custom_components.compact_ai.engine.voice.training import DEFAULT_PHRASES
from custom_components.compact_ai.voice import store as voice_store
from custom_components.compact_ai.voice.store import STORAGE_KEY

from ..common import call, transcribe
from .helpers import (
    RATE,
    TRAINING_SENSOR,
    commands,
    set_phrases,
    trained,
)


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

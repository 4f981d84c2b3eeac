"""Voice commands through Home Assistant: the stt entity, the event and a real Assist pipeline.

The utterances are synthesized with espeak-ng (scripts/apt-packages.txt) and run through the
shipped speech models and command set on the backend the integration picks (onnxruntime, or
ncnn with COMPACT_AI_SIMULATE_MUSL=1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.components import assist_pipeline, stt, tts, wake_word
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai import const
from custom_components.compact_ai.const import CONF_TIER, DOMAIN
from custom_components.compact_ai.engine.errors import InferenceError
from custom_components.compact_ai.engine.voice.audio import decode_wav, speech_segment
from custom_components.compact_ai.voice.manager import ISSUE_VOICE

from .common import CHUNK, STT, add_pipeline, chunks, metadata, stt_entity, transcribe
from .voice_training.tts_entities import WORKS, set_up_tts

WAKE = "wake_word.compact_ai_wake_phrases"
WAKE_PHRASE = "unlock the door"  # any phrase of the set can wake; users add e.g. "hey home"
VOICE_EVENT = "event.compact_ai_voice_command"
TIER_SENSOR = "sensor.compact_ai_model_tier"
BACKEND_SENSOR = "sensor.compact_ai_inference_backend"
RATE = 16_000
COMMANDS = ("yes", "stop", "lights on", "unlock the door")
OTHER_SPEECH = "the weather is nice today"
TTS_LANGUAGE, TTS_VOICE = "en_US", "en-029+m1"  # a voice of .voice_training.tts_entities


def speak(text: str) -> bytes:
    """Return raw 16 kHz 16-bit mono PCM of espeak-ng saying ``text`` (then 0.5 s silence)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us+m3", "--stdout", text], capture_output=True, check=True
    ).stdout
    samples = decode_wav(wav).samples
    return np.concatenate([samples, np.zeros(RATE // 2, np.int16)]).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def utterances() -> dict[str, bytes]:
    assert shutil.which("espeak-ng"), "install espeak-ng (scripts/apt-packages.txt)"
    return {text: speak(text) for text in (*COMMANDS, OTHER_SPEECH)}


async def test_commands_are_transcribed_and_fire_the_event(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    assert hass.states.get(STT).state != "unavailable"
    if os.environ.get("COMPACT_AI_SIMULATE_MUSL"):
        assert hass.states.get(BACKEND_SENSOR).state == "ncnn"
    for phrase in COMMANDS:
        result = await transcribe(hass, utterances[phrase])
        assert result == stt.SpeechResult(phrase, stt.SpeechResultState.SUCCESS)
        state = hass.states.get(VOICE_EVENT)
        assert state.attributes["event_type"] == "recognized"
        assert state.attributes["phrase"] == phrase
        assert 0.65 <= state.attributes["confidence"] <= 1.0


async def test_other_speech_silence_and_noise_are_not_commands(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    error = stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    assert await transcribe(hass, utterances[OTHER_SPEECH]) == error
    state = hass.states.get(VOICE_EVENT)
    assert state.attributes["event_type"] == "unknown"
    assert "phrase" not in state.attributes
    noise = np.random.default_rng(0).normal(0, 800, 3 * RATE).astype("<i2").tobytes()
    for audio in (bytes(4 * RATE), noise):
        assert await transcribe(hass, audio) == error
    assert hass.states.get(VOICE_EVENT).last_changed == state.last_changed  # no event for them


async def test_bad_audio_gives_an_error_result(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    error = stt.SpeechResult(None, stt.SpeechResultState.ERROR)
    entity = stt_entity(hass)
    assert not entity.check_metadata(metadata(stt.AudioChannels.CHANNEL_STEREO))
    assert entity.check_metadata(metadata())
    garbage = np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    for data in (b"", b"\x01", b"RIFF" + garbage, garbage):
        assert await transcribe(hass, data) == error
    mu_law = b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00\x01\x00" + bytes(100)
    assert await transcribe(hass, mu_law) == error
    # Still working afterwards.
    assert (await transcribe(hass, utterances["yes"])).text == "yes"


async def test_recording_samples_keeps_no_other_command(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    commands = entry.runtime_data.commands
    await hass.services.async_call(
        DOMAIN, "record_voice_samples", {"phrase": "yes", "count": 2}, blocking=True
    )
    assert (await transcribe(hass, utterances["stop"])).text == "stop"
    await hass.async_block_till_done()
    assert commands.capture is not None
    assert commands.capture.remaining == 2  # "stop" is not kept as a recording of "yes"
    assert (await transcribe(hass, utterances["yes"])).text == "yes"
    await hass.async_block_till_done()
    assert commands.capture.remaining == 1
    assert (commands.store.recording_count("yes"), commands.store.recording_count("stop")) == (1, 0)
    await commands.async_shutdown()


async def test_a_refused_spoken_sample_does_not_count(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    """An utterance the recording checks refuse (here clipped) leaves the count as it was."""
    commands = entry.runtime_data.commands
    await hass.services.async_call(
        DOMAIN, "record_voice_samples", {"phrase": "yes", "count": 1}, blocking=True
    )
    samples = np.frombuffer(utterances["yes"], "<i2").astype(np.int32) * 40
    clipped = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    await transcribe(hass, clipped)
    await hass.async_block_till_done()
    assert commands.store.recording_count("yes") == 0
    assert commands.capture is not None and commands.capture.remaining == 1
    assert (await transcribe(hass, utterances["yes"])).text == "yes"
    await hass.async_block_till_done()
    assert commands.store.recording_count("yes") == 1
    assert commands.capture is None  # done after the one kept
    await commands.async_shutdown()


async def test_only_the_first_ten_seconds_are_heard(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    pause = bytes(2 * 11 * RATE)
    late = await transcribe(hass, pause + utterances["stop"])
    assert late.result == stt.SpeechResultState.ERROR
    early = await transcribe(hass, utterances["stop"] + bytes(2 * 120 * RATE))
    assert early == stt.SpeechResult("stop", stt.SpeechResultState.SUCCESS)


async def test_wav_files_through_the_http_api(
    hass: HomeAssistant, entry: MockConfigEntry, hass_client: Any, utterances: dict[str, bytes]
) -> None:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(utterances["lights on"])
    header = "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel={}; language=en"
    client = await hass_client()
    response = await client.post(
        f"/api/stt/{STT}", data=buffer.getvalue(), headers={"X-Speech-Content": header.format(1)}
    )
    assert response.status == 200
    assert await response.json() == {"text": "lights on", "result": "success"}
    response = await client.post(
        f"/api/stt/{STT}", data=buffer.getvalue(), headers={"X-Speech-Content": header.format(2)}
    )
    assert response.status == 415


async def test_unusable_command_set_makes_voice_unavailable(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    pack = tmp_path / "pack"
    shutil.copytree(const.PACK_DIR, pack, symlinks=True)
    (pack / "commands" / "default" / "head.npz").write_bytes(b"tampered")
    entry = MockConfigEntry(domain=DOMAIN, options={CONF_TIER: "balanced"})
    entry.add_to_hass(hass)
    with patch("custom_components.compact_ai.const.PACK_DIR", pack):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert hass.states.get(STT).state == "unavailable"
    assert hass.states.get(WAKE).state == "unavailable"
    assert hass.states.get(VOICE_EVENT).state == "unavailable"
    assert hass.states.get(TIER_SENSOR).state == "balanced"  # the rest still works
    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE_VOICE)
    assert issue is not None and "head.npz" in issue.translation_placeholders["error"]
    entity = stt_entity(hass)
    result = await entity.async_process_audio_stream(metadata(), chunks(bytes(32_000)))
    assert result.result == stt.SpeechResultState.ERROR
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "add_voice_phrase", {"phrase": "good night"}, blocking=True
        )
    assert err.value.translation_key == "voice_unavailable"


async def lamp_and_pipeline(
    hass: HomeAssistant, wake_word_entity: str | None, tts_entity: str | None = None
) -> str:
    """Set up a template light and an Assist pipeline with our stt (wake word, TTS); its id."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"lamp": {"initial": False}}}
    )
    lamp = {"entity_id": "input_boolean.lamp"}
    light = {
        "name": "Lights",
        "state": "{{ is_state('input_boolean.lamp', 'on') }}",
        "turn_on": [{"action": "input_boolean.turn_on", "target": lamp}],
        "turn_off": [{"action": "input_boolean.turn_off", "target": lamp}],
    }
    assert await async_setup_component(hass, "template", {"template": [{"light": [light]}]})
    assert await async_setup_component(hass, "assist_pipeline", {})
    await hass.async_block_till_done()
    return await add_pipeline(
        hass,
        name="Compact AI commands",
        stt_engine=STT,
        stt_language="en",
        tts_engine=tts_entity,
        tts_language=TTS_LANGUAGE if tts_entity else None,
        tts_voice=TTS_VOICE if tts_entity else None,
        wake_word_entity=wake_word_entity,
        wake_word_id=WAKE_PHRASE if wake_word_entity else None,
    )


async def test_spoken_command_turns_a_light_on_and_is_answered_through_assist(
    hass: HomeAssistant,
    private_config_dir: None,
    entry: MockConfigEntry,
    hass_client: Any,
    utterances: dict[str, bytes],
) -> None:
    """The whole Assist pipeline: our speech-to-text, the intent, a spoken answer."""
    speakers = await set_up_tts(hass, {"Speaker": WORKS})
    (tts_entity,) = speakers
    pipeline_id = await lamp_and_pipeline(hass, None, tts_entity)
    events: list[assist_pipeline.PipelineEvent] = []
    await assist_pipeline.async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=metadata(),
        stt_stream=chunks(bytes(RATE) + utterances["lights on"] + bytes(2 * RATE)),
        pipeline_id=pipeline_id,
        tts_audio_output={tts.ATTR_PREFERRED_FORMAT: "wav"},  # as made: no ffmpeg needed
    )
    by_type = {event.type: event.data for event in events}
    assert "error" not in by_type, by_type.get("error")
    assert by_type["stt-end"]["stt_output"]["text"] == "lights on"
    assert by_type["intent-start"]["intent_input"] == "lights on"
    response = by_type["intent-end"]["intent_output"]["response"]
    assert response["response_type"] == "action_done"
    assert hass.states.get("input_boolean.lamp").state == "on"
    assert hass.states.get(VOICE_EVENT).attributes["phrase"] == "lights on"
    answer = response["speech"]["plain"]["speech"]
    assert answer and by_type["tts-start"]["tts_input"] == answer
    assert await spoken_answer(hass_client, by_type["tts-end"]["tts_output"]) > 0.5
    assert speakers[tts_entity].calls == [(answer, TTS_LANGUAGE, TTS_VOICE)]


async def spoken_answer(hass_client: Any, output: dict[str, Any]) -> float:
    """Fetch the pipeline's answer as a satellite does; return the seconds of speech in it."""
    assert output["mime_type"] == "audio/x-wav"
    client = await hass_client()
    response = await client.get(output["url"])
    assert response.status == 200
    samples = decode_wav(await response.read()).samples
    segment = speech_segment(samples)
    assert segment is not None, "the answer is silent"
    return (segment[1] - segment[0]) / RATE


def wake_entity(hass: HomeAssistant) -> wake_word.WakeWordDetectionEntity:
    entity = wake_word.async_get_wake_word_detection_entity(hass, WAKE)
    assert entity is not None
    return entity


async def timed_chunks(data: bytes) -> AsyncIterator[tuple[bytes, int]]:
    """Yield 40 ms chunks with their start in milliseconds, as the Assist pipeline does."""
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK], start // 32


async def test_wake_phrase_is_detected_with_the_audio_after_it(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    entity = wake_entity(hass)
    words = await entity.get_supported_wake_words()
    assert [word.id for word in words] == list(entry.runtime_data.voice.phrases)
    assert WAKE_PHRASE in {word.phrase for word in words}
    assert hass.states.get(WAKE).state == "unknown"

    lead = bytes(RATE)  # half a second of silence
    phrase = utterances[WAKE_PHRASE][:-RATE]  # without speak()'s trailing silence
    after = bytes(2 * int(0.4 * RATE)) + utterances["stop"]  # a pause, then a command
    result = await entity.async_process_audio_stream(
        timed_chunks(lead + phrase + after + bytes(2 * RATE)), WAKE_PHRASE
    )
    assert result is not None
    assert (result.wake_word_id, result.wake_word_phrase) == (WAKE_PHRASE, WAKE_PHRASE)
    phrase_end_ms = (len(lead) + len(phrase)) // 32
    assert phrase_end_ms < result.timestamp < phrase_end_ms + 1000
    assert result.queued_audio
    first_queued_ms = result.queued_audio[0][1]
    assert phrase_end_ms - 400 < first_queued_ms <= phrase_end_ms
    assert b"".join(c for c, _ in result.queued_audio) in lead + phrase + after
    assert hass.states.get(WAKE).state not in ("unknown", "unavailable")  # time of detection

    # Any phrase when no id is given; other speech and silence never wake.
    result = await entity.async_process_audio_stream(timed_chunks(utterances["stop"]), None)
    assert result is not None and result.wake_word_id == "stop"
    quiet = utterances[OTHER_SPEECH] + utterances["stop"] + bytes(4 * RATE)
    assert await entity.async_process_audio_stream(timed_chunks(quiet), WAKE_PHRASE) is None
    with pytest.raises(InferenceError, match="hey computer"):
        await entity.async_process_audio_stream(timed_chunks(quiet), "hey computer")


async def test_wake_phrase_then_command_through_assist(
    hass: HomeAssistant, entry: MockConfigEntry, utterances: dict[str, bytes]
) -> None:
    """Audio from a satellite: the wake phrase, a short pause, then the command."""
    pipeline_id = await lamp_and_pipeline(hass, WAKE)
    events: list[assist_pipeline.PipelineEvent] = []
    stream = bytes(RATE) + utterances[WAKE_PHRASE] + utterances["lights on"] + bytes(2 * RATE)
    await assist_pipeline.async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=metadata(),
        stt_stream=chunks(stream),
        pipeline_id=pipeline_id,
        start_stage=assist_pipeline.PipelineStage.WAKE_WORD,
        end_stage=assist_pipeline.PipelineStage.INTENT,
    )
    by_type = {event.type: event.data for event in events}
    assert "error" not in by_type, by_type.get("error")
    assert by_type["wake_word-end"]["wake_word_output"]["wake_word_id"] == WAKE_PHRASE
    assert by_type["stt-end"]["stt_output"]["text"] == "lights on"
    assert hass.states.get("input_boolean.lamp").state == "on"

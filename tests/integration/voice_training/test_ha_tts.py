"""Training with the user's own Home Assistant TTS entities (as on Home Assistant OS).

The entities are real (:mod:`.tts_entities`: espeak-ng voices behind Home Assistant's TTS
manager, like Wyoming Piper); failing ones raise, hang or return silence.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.components import stt
from homeassistant.core import Event, EventStateChangedData, HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_PHRASES, CONF_TIER, CONF_TTS_ENTITIES
from custom_components.compact_ai.voice import ha_tts
from custom_components.compact_ai.voice.trainer import ISSUE_NEEDS_RECORDINGS, ISSUE_TTS_FAILED

from ..common import add_pipeline, set_up_entry, transcribe
from .helpers import TIMEOUT, TRAINING_SENSOR, commands, repair, trained
from .tts_entities import (
    HANGS,
    MULTI_SPEAKER,
    MULTI_VOICE,
    RAISES,
    SILENT,
    SPEAKERS,
    VOICES,
    WORKS,
    MultiSpeakerEntity,
    set_up_tts,
)

TRANSLATIONS = Path(__file__).parents[3] / "custom_components/compact_ai/translations"
PHRASES = ["open the garage", "good night"]
VOICE_COUNT = sum(len(voices) for voices in VOICES.values())


@pytest.fixture
def no_synthesizer() -> Iterator[None]:
    """No espeak-ng, flite or festival on the host, as on Home Assistant OS."""
    with patch("custom_components.compact_ai.voice.training.available_voices", return_value=[]):
        yield


async def save_voice_page(
    hass: HomeAssistant, entry: MockConfigEntry, *choices: list[str], step: str = "voice"
) -> Any:
    """Open the voice page and submit ``PHRASES`` with each list of TTS entities in turn."""
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "voice"}
    )
    assert flow["step_id"] == step
    key = next(k for k in flow["data_schema"].schema if k == CONF_TTS_ENTITIES)
    assert key.description["suggested_value"] == list(commands(entry).store.tts_entities)
    for entities in choices:
        result = await hass.config_entries.options.async_configure(
            flow["flow_id"], {CONF_PHRASES: PHRASES, CONF_TTS_ENTITIES: entities}
        )
    return result


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


async def test_home_assistant_os_trains_from_tts_voices(
    hass: HomeAssistant, no_synthesizer: None, utterances: dict[str, bytes]
) -> None:
    entities = await set_up_tts(hass, {"Piper": WORKS})
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    progress: list[int] = []

    def seen(event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if (
            state is not None
            and state.entity_id == TRAINING_SENSOR
            and state.state != "unavailable"
        ):
            progress.append(int(state.attributes["progress"]))

    hass.bus.async_listen("state_changed", seen)
    await save_voice_page(hass, entry, ["tts.piper"], step="voice_no_tts")
    state = await trained(hass, entry)

    assert state["state"] == "idle", state.get("error")
    assert state["command_set"] == "custom"
    assert state["tts_entities"] == ["tts.piper"]
    spoken = state["tts"]
    assert len(spoken["voices"]) == VOICE_COUNT  # every voice of every English language
    assert spoken["failures"] == {}
    assert spoken["clips"] == spoken["calls"] == len(entities["tts.piper"].calls)
    phrase_calls = [call for call in entities["tts.piper"].calls if call[0] in PHRASES]
    assert sorted({voice for _, _, voice in phrase_calls}) == sorted(
        voice for voices in VOICES.values() for voice in voices
    )
    assert len(phrase_calls) == VOICE_COUNT * len(PHRASES)
    assert repair(hass, entry, ISSUE_TTS_FAILED) is None
    assert repair(hass, entry, ISSUE_NEEDS_RECORDINGS) is None
    manifest = json.loads(
        await hass.async_add_executor_job(
            (commands(entry).store.command_set_dir / "manifest.json").read_text
        )
    )
    training = manifest["training"]
    assert training["voices"] == 0  # no host synthesizer
    assert training["spoken_clips"] == spoken["clips"]
    assert len(training["spoken_families"]) == VOICE_COUNT
    assert training["validation_families"]  # one voice held out to calibrate on
    # Progress moved through the TTS calls, then the training, and ended at 100.
    assert progress[-1] == 100
    assert any(0 < value < 60 for value in progress)
    assert progress == sorted(progress)

    # An unheard voice (espeak-ng en-us) saying a phrase is recognized.
    result = await transcribe(hass, utterances["open the garage"])
    assert result == stt.SpeechResult("open the garage", stt.SpeechResultState.SUCCESS)


async def use_in_pipelines(hass: HomeAssistant, voices: dict[str, str]) -> None:
    """Set up Assist with one pipeline per ``tts entity: voice``, as a user picks them."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "assist_pipeline", {})
    for entity_id, voice in voices.items():
        await add_pipeline(
            hass, name=entity_id, tts_engine=entity_id, tts_language="en_GB", tts_voice=voice
        )


async def test_multi_speaker_voices_lend_their_speakers(hass: HomeAssistant) -> None:
    """Two Wyoming voices of 30 speakers share what the plain voices leave, spread out."""
    entities = await set_up_tts(
        hass, {"Piper": MULTI_SPEAKER, "Piper 2": MULTI_SPEAKER, "Espeak": WORKS}
    )
    await use_in_pipelines(hass, {"tts.piper": MULTI_VOICE, "tts.piper_2": MULTI_VOICE})
    spoken = await ha_tts.async_speak(
        hass, ["tts.piper", "tts.piper_2", "tts.espeak", "tts.piper"], PHRASES, lambda _: None,
        negatives=0,
    )  # fmt: skip

    assert spoken.failures == {}
    assert len(spoken.clips) == spoken.calls
    families = [voice.family for voice in spoken.voices]
    assert len(families) == len(set(families)) == ha_tts.MAX_VOICES  # an entity named twice
    by_entity = {
        entity: [v.speaker for v in spoken.voices if v.entity_id == entity] for entity in entities
    }
    assert by_entity["tts.espeak"] == [None] * VOICE_COUNT  # no speakers: each voice once
    # 21 places left, taken in turns: 11 and 10 speakers of the voice each pipeline uses.
    assert [len(by_entity["tts.piper"]), len(by_entity["tts.piper_2"])] == [11, 10]
    for entity in ("tts.piper", "tts.piper_2"):
        speakers = by_entity[entity]
        assert speakers[0] == SPEAKERS[0] and speakers[-1] == SPEAKERS[-1]  # the whole range
        assert len(set(speakers)) == len(speakers) and set(speakers) < set(SPEAKERS)
        piper = entities[entity]
        assert isinstance(piper, MultiSpeakerEntity)
        # Every call through Home Assistant's TTS named one of them, each as often, and only
        # the pipeline's voice: the other listed voices would be downloaded.
        said = Counter(piper.speakers)
        assert set(said) == set(speakers) and len(set(said.values())) == 1
        assert {voice for _, _, voice in piper.calls} == {MULTI_VOICE}
    # Clips of one phrase by two speakers of a voice differ: the speaker reached the engine.
    first = [c for c in spoken.clips if c.label == 0 and c.family.startswith("tts.piper:")]
    assert len(first) == 11
    assert not np.array_equal(first[0].samples, first[-1].samples)


async def test_a_wyoming_voice_no_pipeline_uses_is_never_asked(hass: HomeAssistant) -> None:
    """Piper lists every voice it could download: without Assist, its default voice speaks."""
    entities = await set_up_tts(hass, {"Piper": MULTI_SPEAKER})
    spoken = await ha_tts.async_speak(hass, ["tts.piper"], PHRASES, lambda _: None, negatives=0)

    assert [(v.voice, v.speaker) for v in spoken.voices] == [(None, None)]
    assert spoken.failures == {} and len(spoken.clips) == spoken.calls > 0
    assert {voice for _, _, voice in entities["tts.piper"].calls} == {None}


async def test_failing_tts_entities_are_reported_and_the_set_kept(
    hass: HomeAssistant,
    no_synthesizer: None,
    utterances: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ha_tts, "CALL_TIMEOUT", 0.5)
    entities = await set_up_tts(hass, {"Down": RAISES, "Stuck": HANGS, "Mute": SILENT})
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    await save_voice_page(hass, entry, list(entities), step="voice_no_tts")
    state = await trained(hass, entry)

    # Nothing usable and no recordings: the default set stays in use.
    assert state["state"] == "needs_recordings"
    assert state["command_set"] == "default"
    assert (await transcribe(hass, utterances["yes"])).text == "yes"
    failures = state["tts"]["failures"]
    calls = state["tts"]["calls"]
    per_entity = calls // 3
    assert failures == {
        "tts.down": {"failed": 3, "skipped": per_entity - 3},
        "tts.stuck": {"timed_out": 3, "skipped": per_entity - 3},
        "tts.mute": {"silent": 3, "skipped": per_entity - 3},
    }
    assert [len(entity.calls) for entity in entities.values()] == [3, 3, 3]
    issue = repair(hass, entry, ISSUE_TTS_FAILED)
    assert issue is not None
    assert issue.translation_key == ISSUE_TTS_FAILED
    assert issue.translation_placeholders == {
        "entities": "tts.down, tts.mute, tts.stuck",
        "calls": str(calls),
        "clips": "0",
        "failed": "3",
        "timed_out": "3",
        "silent": "3",
        "skipped": str(3 * (per_entity - 3)),
        "unusable": "0",
    }
    for language in ("en", "zh-Hans"):
        text = json.loads((TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8"))
        message = text["issues"][ISSUE_TTS_FAILED]
        assert placeholders(message["description"]) == set(issue.translation_placeholders)
    assert repair(hass, entry, ISSUE_NEEDS_RECORDINGS) is not None
    entities["tts.stuck"].release.set()
    await hass.async_block_till_done()


async def test_partial_tts_results_are_used_beside_the_host_voices(hass: HomeAssistant) -> None:
    entities = await set_up_tts(hass, {"Piper": WORKS, "Down": RAISES})
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    refused = ["tts.piper", "tts.gone"]  # tts.gone does not exist: the page refuses it
    result = await save_voice_page(hass, entry, refused)
    assert result["errors"] == {CONF_TTS_ENTITIES: "entity_not_found"}
    assert commands(entry).store.tts_entities == ()
    assert commands(entry).trainer.task is None

    await save_voice_page(hass, entry, refused, ["tts.piper", "tts.down"])
    result = await trained(hass, entry)
    assert result["state"] == "idle", result.get("error")
    spoken = result["tts"]
    assert spoken["clips"] == len(entities["tts.piper"].calls) > 0
    assert spoken["failures"] == {"tts.down": {"failed": 3, "skipped": spoken["calls"] // 2 - 3}}
    training = commands(entry).store.trained
    assert training is not None
    manifest = json.loads(
        await hass.async_add_executor_job(
            (commands(entry).store.command_set_dir / "manifest.json").read_text
        )
    )
    assert manifest["training"]["voices"] > 0  # the host's synthesizers too
    assert manifest["training"]["spoken_clips"] == spoken["clips"]
    assert repair(hass, entry, ISSUE_TTS_FAILED) is not None


async def test_cancel_while_a_tts_entity_hangs(
    hass: HomeAssistant, no_synthesizer: None, utterances: dict[str, bytes]
) -> None:
    entities = await set_up_tts(hass, {"Stuck": HANGS})
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    await save_voice_page(hass, entry, ["tts.stuck"], step="voice_no_tts")
    stuck = entities["tts.stuck"]
    await asyncio.wait_for(stuck.called.wait(), TIMEOUT)
    task = commands(entry).trainer.task
    assert task is not None
    # Unloading cancels the hanging call at once (its timeout is 20 s).
    async with asyncio.timeout(5):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert task.done()
    stuck.release.set()
    await hass.async_block_till_done()
    state: Any = hass.states.get(TRAINING_SENSOR)
    assert state is None or state.state != "training"

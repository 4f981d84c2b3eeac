"""Training the user's own voice commands on the host: recognized, kept, cancelled, failed.

Training is real (espeak-ng, flite and festival voices, the shipped speech models) but with a
tiny plan (:func:`tiny_training`); the test utterances are spoken by a voice family that
training leaves out, so recognizing them means the new set generalizes to an unseen voice.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components import stt, wake_word
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_PHRASES, CONF_TIER
from custom_components.compact_ai.engine.errors import TrainingError
from custom_components.compact_ai.engine.voice.training import DEFAULT_PHRASES
from custom_components.compact_ai.voice import (
    trainer as voice_trainer,
    training as voice_training,
)
from custom_components.compact_ai.voice.store import STORAGE_KEY
from custom_components.compact_ai.voice.trainer import (
    EVENT_TRAINING,
    ISSUE_NEEDS_RECORDINGS,
    ISSUE_TRAINING_FAILED,
)
from custom_components.compact_ai.voice.training import TrainingRequest, TrainingSize

from ..common import call, set_up_entry, transcribe
from .helpers import (
    PHRASES,
    STOP_VOICES,
    TIMEOUT,
    TRAINING_SENSOR,
    VOICE_EVENT,
    WAKE,
    commands,
    repair,
    set_phrases,
    trained,
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

"""Helpers shared by the Home Assistant tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attr
from homeassistant.components import stt
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.compact_ai.const import (
    CONF_BACKEND,
    CONF_COOLDOWN,
    CONF_FRAMES_REQUIRED,
    CONF_FRAMES_WINDOW,
    CONF_LIVENESS,
    CONF_REQUIRE_PRESENCE,
    CONF_STRICT,
    CONF_WINDOW_SECONDS,
    DOMAIN,
    SECTION_ADVANCED,
)

CAMERA = "camera.front_door"
TRANSLATIONS = Path(__file__).parents[2] / "custom_components" / DOMAIN / "translations"

# The options flow's "Advanced" section and door page as a user leaves them.
ADVANCED = {SECTION_ADVANCED: {CONF_BACKEND: "auto"}}
UNLOCK_FORM = {
    CONF_FRAMES_REQUIRED: 2,
    CONF_FRAMES_WINDOW: 3,
    CONF_WINDOW_SECONDS: 5,
    CONF_STRICT: False,
    CONF_COOLDOWN: 30,
    CONF_LIVENESS: True,
    CONF_REQUIRE_PRESENCE: False,
}


def messages(language: str) -> dict[str, str]:
    """Return the service error messages of ``language`` by translation key."""
    data = json.loads((TRANSLATIONS / f"{language}.json").read_text())
    return {key: value["message"] for key, value in data["exceptions"].items()}


EN, ZH = messages("en"), messages("zh-Hans")


def assert_translated(err: ServiceValidationError) -> str:
    """The error names a message in both languages and fills each of its placeholders.

    Return the English text.
    """
    placeholders = err.translation_placeholders or {}
    assert err.translation_key in ZH
    assert ZH[err.translation_key].format(**placeholders)  # a missing one raises
    text = EN[err.translation_key].format(**placeholders)
    assert text
    return text


async def call(hass: HomeAssistant, service: str, **data: Any) -> Any:
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )


async def open_step(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> ConfigFlowResult:
    """Open the options flow of ``entry`` and pick ``step`` from its menu."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )


async def set_up_entry(
    hass: HomeAssistant, options: dict[str, Any], entry_id: str | None = None
) -> MockConfigEntry:
    """Add a Compact AI entry with ``options`` and set it up; it must load."""
    entry = MockConfigEntry(domain=DOMAIN, options=options, entry_id=entry_id)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def show(hass: HomeAssistant, photo: Path) -> None:
    """Point the local_file camera at another photo."""
    await hass.services.async_call(
        "local_file",
        "update_file_path",
        {"entity_id": CAMERA, "file_path": str(photo)},
        blocking=True,
    )


# A new entity's aliases: Home Assistant 2026.10 lists the entity's own name (COMPUTED_NAME)
# where 2026.2 lists nothing and uses the name anyway; the same default, stored two ways.
DEFAULT_ALIASES: Any = [er.COMPUTED_NAME] if hasattr(er, "COMPUTED_NAME") else set()


def plain_capabilities(entry: er.RegistryEntry) -> er.RegistryEntry:
    """Return ``entry`` with its capabilities keyed by plain strings (as :func:`plain_keys`)."""
    if not entry.capabilities:
        return entry
    capabilities = {str(key): value for key, value in entry.capabilities.items()}
    return attr.evolve(entry, capabilities=capabilities)


def plain_keys(state: State) -> State:
    """Return ``state`` with its attributes keyed by plain strings.

    Home Assistant 2026.10 keys some attributes (friendly_name, event_types, ...) and
    capabilities by StrEnum members, which equal their strings but are written differently in
    a snapshot.
    """
    return State(
        state.entity_id,
        state.state,
        attributes={str(key): value for key, value in state.attributes.items()},
        last_changed=state.last_changed,
        last_updated=state.last_updated,
        context=state.context,
    )


async def snapshot_entities(
    hass: HomeAssistant, registry: er.EntityRegistry, snapshot: SnapshotAssertion, entry_id: str
) -> None:
    """Snapshot the registry entry and state of every entity of one platform of the entry.

    As the harness's snapshot_platform, except for what differs between the two releases
    only in how it is written: the aliases are checked against the release's default instead
    of the snapshot, and attribute and capability keys are plain strings (:func:`plain_keys`).
    """
    entries = er.async_entries_for_config_entry(registry, entry_id)
    assert entries
    assert len({entry.domain for entry in entries}) == 1, "set up one platform at a time"
    for entry in entries:
        assert entry.aliases == DEFAULT_ALIASES
        written = plain_capabilities(entry)
        assert written == snapshot(name=f"{entry.entity_id}-entry", exclude=props("aliases"))
        assert entry.disabled_by is None
        state = hass.states.get(entry.entity_id)
        assert state is not None, f"no state for {entry.entity_id}"
        assert plain_keys(state) == snapshot(name=f"{entry.entity_id}-state")


STT = "stt.compact_ai_commands"
CHUNK = 1280  # 40 ms of 16-bit audio, as a voice satellite sends it


def metadata(channel: stt.AudioChannels = stt.AudioChannels.CHANNEL_MONO) -> stt.SpeechMetadata:
    """What a voice satellite declares: 16 kHz 16-bit PCM WAV."""
    return stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=channel,
    )


async def chunks(data: bytes, size: int = CHUNK) -> AsyncIterator[bytes]:
    """Stream ``data`` as a voice satellite would."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def stt_entity(hass: HomeAssistant) -> stt.SpeechToTextEntity:
    """Our speech-to-text entity; it must exist."""
    entity = stt.async_get_speech_to_text_entity(hass, STT)
    assert entity is not None
    return entity


async def transcribe(hass: HomeAssistant, data: bytes) -> stt.SpeechResult:
    """Send ``data`` to speech-to-text in satellite-sized chunks."""
    return await stt_entity(hass).internal_async_process_audio_stream(metadata(), chunks(data))


# An Assist pipeline with Home Assistant's conversation agent and nothing else chosen.
PIPELINE: dict[str, Any] = {
    "conversation_engine": "conversation.home_assistant", "conversation_language": "en",
    "language": "en", "name": "Compact AI", "stt_engine": None, "stt_language": None,
    "tts_engine": None, "tts_language": None, "tts_voice": None, "wake_word_entity": None,
    "wake_word_id": None,
}  # fmt: skip


async def add_pipeline(hass: HomeAssistant, **fields: Any) -> str:
    """Store an Assist pipeline (assist_pipeline set up): :data:`PIPELINE` and ``fields``."""
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    return str((await store.async_create_item({**PIPELINE, **fields})).id)

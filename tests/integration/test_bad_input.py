"""The bad-input corpus: malformed images, audio, service data and stored files.

Each input gets a clear (translated, where a user sees it) error or a clean no-face /
no-speech result; Home Assistant stays up, the entry stays loaded, and nothing stored
before is lost: the stores are compared before and after.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
from homeassistant.components import stt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, CoreState, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_CAMERAS, CONF_TIER, DOMAIN
from custom_components.compact_ai.face.people import STORAGE_KEY as PEOPLE_KEY
from custom_components.compact_ai.helpers.store_check import ISSUE_STORE_DAMAGED
from custom_components.compact_ai.voice.store import STORAGE_KEY as VOICE_KEY

from .bad_inputs import AUDIO, IMAGES, Writer
from .common import (
    CAMERA,
    CHUNK,
    assert_translated,
    call,
    chunks,
    metadata,
    set_up_entry,
    show,
    stt_entity,
)


def stored_person(hass_storage: dict[str, Any], name: str) -> dict[str, Any]:
    """The stored record of the person called ``name`` (records are keyed by person id)."""
    people = hass_storage[PEOPLE_KEY]["data"]["people"].values()
    (person,) = [p for p in people if p["name"] == name]
    return dict(person)


@pytest.fixture
async def stored(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    hass_storage: dict[str, Any],
) -> AsyncIterator[MockConfigEntry]:
    """One enrolled person; afterwards check they and the voice store are unchanged."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await hass.async_block_till_done()
    eileen = copy.deepcopy(stored_person(hass_storage, "Eileen"))
    voice = copy.deepcopy(hass_storage.get(VOICE_KEY))
    yield loaded_entry
    await hass.async_block_till_done()
    assert hass.state is CoreState.running
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert stored_person(hass_storage, "Eileen") == eileen
    assert hass_storage.get(VOICE_KEY) == voice
    listed = await call(hass, "list_people")
    assert "Eileen" in [person["name"] for person in listed["people"]]


async def enroll_outcome(hass: HomeAssistant, path: Path) -> str:
    """Enroll ``path`` as Probe: "enrolled", the one rejection reason, or the error key."""
    try:
        result = await call(hass, "enroll_face", name="Probe", files=[str(path)])
    except ServiceValidationError as err:
        assert_translated(err)
        if err.translation_key == "nothing_enrolled":
            return str((err.translation_placeholders or {})["reasons"])
        return str(err.translation_key)
    assert result["enrolled"] == 1
    return "enrolled"


@pytest.mark.parametrize(
    ("name", "writer", "expected"),
    [case[1:] for case in IMAGES],
    ids=[case[0] for case in IMAGES],
)
async def test_image(
    hass: HomeAssistant,
    stored: MockConfigEntry,
    photo_dir: Path,
    name: str,
    writer: Writer,
    expected: str,
) -> None:
    path = photo_dir / name
    writer(path)
    assert await enroll_outcome(hass, path) == expected
    await show(hass, path)
    report = (await call(hass, "scan"))["cameras"][CAMERA]
    if expected in ("bad_image", "file_too_large"):
        assert report["faces"] == []
        assert report["error"] in ("bad_image", "camera_unavailable")  # local_file: no image
    else:
        assert report["error"] is None
        assert bool(report["faces"]) == (expected == "enrolled")


def read_head(path: Path) -> bytes:
    """Return more than speech-to-text keeps of ``path`` (it may be a sparse 300 MiB)."""
    with path.open("rb") as source:
        return source.read(1 << 20)


async def endless() -> AsyncIterator[bytes]:
    while True:
        await asyncio.sleep(0)
        yield bytes(CHUNK)


async def transcribe_stream(hass: HomeAssistant, stream: AsyncIterator[bytes]) -> stt.SpeechResult:
    async with asyncio.timeout(30):
        return await stt_entity(hass).internal_async_process_audio_stream(metadata(), stream)


NO_SPEECH = stt.SpeechResult(None, stt.SpeechResultState.ERROR)


@pytest.mark.parametrize(
    ("writer", "expected"), [case[1:] for case in AUDIO], ids=[case[0] for case in AUDIO]
)
async def test_audio(
    hass: HomeAssistant, stored: MockConfigEntry, photo_dir: Path, writer: Writer, expected: str
) -> None:
    path = photo_dir / "recording.wav"
    writer(path)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "add_voice_recording", phrase="yes", file=str(path))
    assert_translated(err.value)
    assert err.value.translation_key == expected
    head = await hass.async_add_executor_job(read_head, path)
    assert await transcribe_stream(hass, chunks(head)) == NO_SPEECH


async def test_audio_endless_stream(hass: HomeAssistant, stored: MockConfigEntry) -> None:
    assert await transcribe_stream(hass, endless()) == NO_SPEECH


async def test_audio_from_a_fifo(
    hass: HomeAssistant, stored: MockConfigEntry, photo_dir: Path
) -> None:
    fifo = photo_dir / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(ServiceValidationError) as err:
        async with asyncio.timeout(10):
            await call(hass, "add_voice_recording", phrase="yes", file=str(fifo))
    assert err.value.translation_key == "not_a_file"


NUL_PATH = "/config/www/a\x00b.jpg"
SERVICE_DATA: list[tuple[str, str, dict[str, Any], str]] = [
    ("enroll-empty", "enroll_face", {}, "schema"),
    ("enroll-name-empty", "enroll_face", {"name": "", "files": ["{photos}/coffee.jpg"]}, "schema"),
    ("enroll-name-100k", "enroll_face", {"name": "x" * 100_000}, "schema"),
    ("enroll-name-list", "enroll_face", {"name": ["a", "b"]}, "schema"),
    ("enroll-name-dict", "enroll_face", {"name": {"a": 1}}, "schema"),
    ("enroll-name-control", "enroll_face", {"name": "\x00\x07\x1b"}, "invalid_name"),
    ("enroll-name-emoji", "enroll_face", {"name": "🙂🙂", "files": []}, "invalid_name"),
    (
        "enroll-name-cjk",
        "enroll_face",
        {"name": "李雷", "files": ["{photos}/coffee.jpg"]},
        "no_face",
    ),
    ("enroll-files-int", "enroll_face", {"name": "Probe", "files": 42}, "path_not_allowed"),
    ("enroll-files-nul", "enroll_face", {"name": "Probe", "files": [NUL_PATH]}, "path_not_allowed"),
    (
        "enroll-files-missing",
        "enroll_face",
        {"name": "Probe", "files": ["{photos}/missing.jpg"]},
        "file_unreadable",
    ),
    (
        "enroll-files-100k-path",
        "enroll_face",
        {"name": "Probe", "files": ["/" + "a" * 100_000]},
        "path_not_allowed",
    ),
    ("enroll-files-none", "enroll_face", {"name": "Probe", "files": []}, "camera_or_files"),
    ("enroll-files-folder", "enroll_face", {"name": "Probe", "files": ["{photos}"]}, "not_a_file"),
    (
        "enroll-snapshots-0",
        "enroll_face",
        {"name": "Probe", "camera": CAMERA, "snapshots": 0},
        "schema",
    ),
    (
        "enroll-interval-text",
        "enroll_face",
        {"name": "P", "camera": CAMERA, "interval": "x"},
        "schema",
    ),
    ("enroll-camera-light", "enroll_face", {"name": "Probe", "camera": "light.kitchen"}, "schema"),
    ("scan-entity-garbage", "scan", {"entity_id": "not an entity"}, "schema"),
    ("delete-unknown", "delete_person", {"name": "Nobody"}, "person_not_found"),
    ("delete-whitespace", "delete_person", {"name": "\n\t "}, "invalid_name"),
    ("list-extra-field", "list_people", {"x": 1}, "schema"),
    ("phrase-cjk", "add_voice_phrase", {"phrase": "你好"}, "phrase_invalid"),
    ("phrase-control", "add_voice_phrase", {"phrase": "lights\x00on"}, "phrase_invalid"),
    ("phrase-10k", "add_voice_phrase", {"phrase": "a" * 10_000}, "schema"),
    ("record-count-negative", "record_voice_samples", {"phrase": "yes", "count": -1}, "schema"),
    (
        "recording-folder",
        "add_voice_recording",
        {"phrase": "yes", "file": "{photos}"},
        "not_a_file",
    ),
]


def with_photos(value: Any, photos: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{photos}", str(photos))
    if isinstance(value, list):
        return [with_photos(item, photos) for item in value]
    return value


@pytest.mark.parametrize(
    ("service", "data", "expected"),
    [case[1:] for case in SERVICE_DATA],
    ids=[case[0] for case in SERVICE_DATA],
)
async def test_service_data(
    hass: HomeAssistant,
    stored: MockConfigEntry,
    photo_dir: Path,
    service: str,
    data: dict[str, Any],
    expected: str,
) -> None:
    data = {key: with_photos(value, photo_dir) for key, value in data.items()}
    if expected == "schema":
        with pytest.raises(vol.Invalid):
            await call(hass, service, **data)
        return
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, **data)
    assert_translated(err.value)
    placeholders = err.value.translation_placeholders or {}
    reason = (
        placeholders.get("reasons") if err.value.translation_key == "nothing_enrolled" else None
    )
    assert (reason or err.value.translation_key) == expected


def stored_file(key: str, data: Any, version: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": 1, "key": key, "data": data})


FIVE = [[1.0, 2.0]] * 5
GOOD_SAMPLE = {"embedding": [0.1] * 4, "chip": "", "added": "2026-01-01T00:00:00+00:00"}
STORED: list[tuple[str, str, str]] = [
    ("people-truncated", PEOPLE_KEY, stored_file(PEOPLE_KEY, {"people": {}})[:40]),
    ("people-zero-byte", PEOPLE_KEY, ""),
    ("people-not-json", PEOPLE_KEY, "hello"),
    ("people-top-level-list", PEOPLE_KEY, "[]"),
    ("people-no-version", PEOPLE_KEY, json.dumps({"data": {}})),
    ("people-data-list", PEOPLE_KEY, stored_file(PEOPLE_KEY, [])),
    ("people-people-list", PEOPLE_KEY, stored_file(PEOPLE_KEY, {"people": []})),
    ("people-no-name", PEOPLE_KEY, stored_file(PEOPLE_KEY, {"people": {"a": {}}})),
    (
        "people-embedding-text",
        PEOPLE_KEY,
        stored_file(PEOPLE_KEY, {"people": {"a": {"name": "A", "samples": [{"embedding": "x"}]}}}),
    ),
    (
        "people-sample-without-chip",
        PEOPLE_KEY,
        stored_file(
            PEOPLE_KEY,
            {"people": {"a": {"name": "A", "samples": [{**GOOD_SAMPLE, "chip": None}]}}},
        ),
    ),
    ("people-embedder-number", PEOPLE_KEY, stored_file(PEOPLE_KEY, {"embedder": 5})),
    (
        "people-negative-without-source",
        PEOPLE_KEY,
        stored_file(
            PEOPLE_KEY,
            {"people": {"a": {"name": "A", "negatives": [GOOD_SAMPLE]}}},
            version=2,
        ),
    ),
    (
        "people-points-short",
        PEOPLE_KEY,
        stored_file(
            PEOPLE_KEY,
            {"people": {"a": {"name": "A", "samples": [{**GOOD_SAMPLE, "points": [[1, 2]]}]}}},
        ),
    ),
    (
        "people-points-text",
        PEOPLE_KEY,
        stored_file(
            PEOPLE_KEY,
            {"people": {"a": {"name": "A", "samples": [{**GOOD_SAMPLE, "points": "eyes"}]}}},
        ),
    ),
    (
        "people-landmarks-without-points",
        PEOPLE_KEY,
        stored_file(
            PEOPLE_KEY,
            {"people": {"a": {"name": "A", "samples": [{**GOOD_SAMPLE, "landmarks": FIVE}]}}},
        ),
    ),
    ("voice-truncated", VOICE_KEY, stored_file(VOICE_KEY, {"phrases": ["yes"]})[:50]),
    ("voice-phrases-text", VOICE_KEY, stored_file(VOICE_KEY, {"phrases": "yes"})),
    (
        "voice-recording-escapes",
        VOICE_KEY,
        stored_file(
            VOICE_KEY,
            {
                "phrases": ["yes"],
                "recordings": {"yes": [{"file": "../../x.wav", "added": "", "source": "file"}]},
            },
        ),
    ),
    ("voice-phrase-is-a-path", VOICE_KEY, stored_file(VOICE_KEY, {"recordings": {"../..": []}})),
    ("voice-revision-text", VOICE_KEY, stored_file(VOICE_KEY, {"revision": "7"})),
]


@pytest.mark.parametrize(
    ("key", "content"), [case[1:] for case in STORED], ids=[case[0] for case in STORED]
)
async def test_stored_file(hass: HomeAssistant, real_storage: Path, key: str, content: str) -> None:
    def write() -> None:
        real_storage.mkdir(parents=True, exist_ok=True)
        (real_storage / key).write_text(content)

    def kept() -> list[str]:  # kept for recovery, unchanged
        return [p.read_text() for p in real_storage.iterdir() if p.name.startswith(f"{key}.")]

    await hass.async_add_executor_job(write)
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    assert entry.state is ConfigEntryState.LOADED
    issues = ir.async_get(hass).issues
    assert (DOMAIN, f"{ISSUE_STORE_DAMAGED}_{key}") in issues or any(
        domain == HOMEASSISTANT_DOMAIN and issue.startswith(f"storage_corruption_{key}")
        for domain, issue in issues
    )
    assert await hass.async_add_executor_job(kept) == [content]
    assert await call(hass, "list_people") == {"people": []}
    assert (await call(hass, "reset_voice_commands"))["state"] == "idle"


async def test_a_stored_chip_that_cannot_be_read_is_dropped_not_a_failed_setup(
    hass: HomeAssistant, camera_entity: str, hass_storage: dict[str, Any]
) -> None:
    """Stored data of another embedder is re-embedded from its chips; a broken chip is dropped.

    The chip has its points (store version 3), so the shipped embedder tries to read it. A
    broken negative is kept, unusable: Zoe waits for it to be enrolled again, never matched
    without it (tests/integration/test_attack_tiers.py).
    """
    broken = {"embedding": [0.1] * 128, "chip": "", "added": "2026-01-01T00:00:00+00:00"}
    broken["points"] = [[1.0, 2.0]] * 4
    negative = dict(broken, chip="%%", source="a look-alike.jpg")
    person = {"name": "Zoe", "samples": [broken], "negatives": [negative]}
    people = {"people": {"zoe": person}}
    hass_storage[PEOPLE_KEY] = json.loads(stored_file(PEOPLE_KEY, people, version=3))
    entry = await set_up_entry(hass, {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]})
    assert entry.state is ConfigEntryState.LOADED
    listed = await call(hass, "list_people")
    assert listed["people"] == [{"name": "Zoe", "samples": 0, "negatives": 1}]
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "reenroll_for_tier")
    assert issue is not None and issue.translation_placeholders == {"people": "Zoe"}

"""Resource bounds of the services (issue 16, item 6) in a real Home Assistant.

Every request that could make Home Assistant read, decode, hold or run too much is refused
before it does, with a translated error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import storage
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.engine.voice.commands import CommandRecognizer
from custom_components.compact_ai.face import people
from custom_components.compact_ai.face.manager import MAX_IMAGE_BYTES
from custom_components.compact_ai.helpers import inference

from .common import call

ASTRONAUT = "astronaut.jpg"


@pytest.fixture
def entry(loaded_entry: MockConfigEntry) -> MockConfigEntry:
    """The loaded Compact AI entry watching the front door camera."""
    return loaded_entry


async def refused(hass: HomeAssistant, **data: Any) -> str:
    """Call enroll_face expecting a translated error; return its key."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_face", **data)
    assert err.value.translation_key is not None
    return err.value.translation_key


async def test_eleven_files_are_refused_by_the_schema(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    with pytest.raises(vol.Invalid, match="at most 10"):
        await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / ASTRONAUT)] * 11)
    assert await call(hass, "list_people") == {"people": []}


async def test_person_cap_is_checked_before_any_file_is_read(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(people, "MAX_SAMPLES_PER_PERSON", 2)
    photo, missing = str(photo_dir / ASTRONAUT), str(photo_dir / "missing.jpg")
    await call(hass, "enroll_face", name="Eileen", files=[photo])
    # One place left, two files given: refused before the (unreadable) second one is read.
    more = {"name": "Eileen", "add_to_existing": True}
    assert await refused(hass, **more, files=[photo, missing]) == "person_room"
    await call(hass, "enroll_face", **more, files=[photo])
    assert await refused(hass, **more, files=[missing]) == "person_full"
    assert (await call(hass, "list_people"))["people"][0]["samples"] == 2


async def test_people_are_limited(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(people, "MAX_PEOPLE", 2)
    photo = str(photo_dir / ASTRONAUT)
    for name in ("Eileen", "Sally"):
        await call(hass, "enroll_face", name=name, files=[photo])
    missing = str(photo_dir / "missing.jpg")
    assert await refused(hass, name="Valentina", files=[missing]) == "too_many_people"
    await call(hass, "enroll_face", name="Sally", add_to_existing=True, files=[photo])  # may grow
    assert len((await call(hass, "list_people"))["people"]) == 2


async def test_symlinks_are_checked_where_they_lead(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, tmp_path_factory: Any
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.jpg"
    outside.write_bytes((photo_dir / ASTRONAUT).read_bytes())
    (photo_dir / "escape.jpg").symlink_to(outside)
    (photo_dir / "inside.jpg").symlink_to(photo_dir / ASTRONAUT)
    (photo_dir / "loop.jpg").symlink_to(photo_dir / "loop.jpg")
    escape, loop = str(photo_dir / "escape.jpg"), str(photo_dir / "loop.jpg")
    assert await refused(hass, name="Eileen", files=[escape]) == "path_not_allowed"
    assert await refused(hass, name="Eileen", files=[loop]) == "file_unreadable"
    result = await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "inside.jpg")])
    assert result["enrolled"] == 1


async def test_a_parent_folder_linked_outside_is_refused(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, tmp_path_factory: Any
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / ASTRONAUT).write_bytes((photo_dir / ASTRONAUT).read_bytes())
    (photo_dir / "linked").symlink_to(outside, target_is_directory=True)
    linked = str(photo_dir / "linked" / ASTRONAUT)
    assert await refused(hass, name="Eileen", files=[linked]) == "path_not_allowed"


async def test_a_parent_folder_swapped_for_a_link_after_the_check_is_refused(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, tmp_path_factory: Any
) -> None:
    """The folder is real when checked and a link outside when opened: nothing is read."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / ASTRONAUT).write_bytes((photo_dir / ASTRONAUT).read_bytes())  # a face
    folder = photo_dir / "sub"
    folder.mkdir()
    (folder / ASTRONAUT).write_bytes((photo_dir / "coffee.jpg").read_bytes())  # no face
    checked = hass.config.is_allowed_path

    def check_then_swap(path: str) -> bool:  # the attacker wins the race
        allowed = checked(path)
        if not folder.is_symlink():
            folder.rename(photo_dir / "sub_before")
            folder.symlink_to(outside, target_is_directory=True)
        return allowed

    with patch.object(hass.config, "is_allowed_path", check_then_swap):
        refusal = await refused(hass, name="Eileen", files=[str(folder / ASTRONAUT)])
    assert folder.is_symlink()  # swapped after the check
    assert refusal == "file_unreadable"
    assert await call(hass, "list_people") == {"people": []}


async def test_only_regular_files_of_bounded_size_are_read(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    fifo = photo_dir / "pipe.jpg"
    os.mkfifo(fifo)
    try:
        async with asyncio.timeout(10):  # a blocking open() would hang here
            assert await refused(hass, name="Eileen", files=[str(fifo)]) == "not_a_file"
    finally:
        with contextlib.suppress(OSError):  # release a reader stuck in open() (old code)
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert await refused(hass, name="Eileen", files=[str(photo_dir)]) == "not_a_file"
    big = photo_dir / "big.jpg"
    with big.open("wb") as out:
        out.truncate(MAX_IMAGE_BYTES + 1)  # sparse: no disk used
    assert await refused(hass, name="Eileen", files=[str(big)]) == "file_too_large"


@pytest.fixture
def slow_recognizer(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make each voice recognition take 0.2 s longer; return the most that ran at once."""
    original = CommandRecognizer.recognize
    lock, running, most = threading.Lock(), [0], [0]

    def recognize(self: CommandRecognizer, samples: Any) -> Any:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.2)
            return original(self, samples)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(CommandRecognizer, "recognize", recognize)
    return most


async def test_inference_jobs_wait_for_a_free_slot(
    hass: HomeAssistant, entry: MockConfigEntry, slow_recognizer: list[int]
) -> None:
    voice = entry.runtime_data.voice
    silence = bytes(16_000 * 2)
    results = await asyncio.gather(*(voice.async_recognize(silence) for _ in range(8)))
    assert [result.phrase for result in results] == [None] * 8
    assert slow_recognizer[0] == inference.MAX_INFERENCE_JOBS


async def test_people_are_serialized_off_the_event_loop(
    hass: HomeAssistant,
    real_storage: Path,
    camera_entity: str,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    original = storage.json_helper.prepare_save_json

    def prepare(data: dict[str, Any], **kwargs: Any) -> Any:
        if data.get("key") == people.STORAGE_KEY:
            threads.append(threading.get_ident())
        return original(data, **kwargs)

    monkeypatch.setattr(storage.json_helper, "prepare_save_json", prepare)
    entry = MockConfigEntry(domain="compact_ai", options={"tier": "balanced"})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / ASTRONAUT)])
    await hass.async_block_till_done()
    assert threads
    assert hass.loop_thread_id not in threads
    assert (real_storage / people.STORAGE_KEY).is_file()

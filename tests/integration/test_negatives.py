"""Negatives record where they came from and are deleted with it (issue 16, item 7).

Real Home Assistant, real models, real photos: Eileen (astronaut), Tom (Tom Hanks), and a
stranger enrolled nowhere (one of the people in insightface's sample t1.jpg).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_TIER, DOMAIN
from custom_components.compact_ai.face.people import STORAGE_KEY, STORAGE_VERSION, Person

from .common import call, set_up_entry


def sources(entry: MockConfigEntry, name: str) -> list[str]:
    person: Person | None = entry.runtime_data.people.find(name)
    assert person is not None
    return [negative.source for negative in person.negatives]


def person_id(entry: MockConfigEntry, name: str) -> str:
    person: Person | None = entry.runtime_data.people.find(name)
    assert person is not None
    return person.person_id


async def test_a_negative_that_shows_an_enrolled_person_is_deleted_with_them(
    hass: HomeAssistant, photo_dir: Path, hass_storage: dict[str, Any]
) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    # Eileen's face (mirrored) and a stranger's, before Eileen is enrolled: one upload
    files = [str(photo_dir / "mirrored.jpg"), str(photo_dir / "stranger.jpg")]
    assert (await call(hass, "enroll_negative", name="Tom", files=files))["enrolled"] == 2
    upload, again = sources(entry, "Tom")
    assert upload.startswith("upload:") and again == upload
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    eileen = f"person:{person_id(entry, 'Eileen')}"
    assert sources(entry, "Tom") == [eileen, upload]  # enrolling her claimed her face
    stored = hass_storage[STORAGE_KEY]["data"]["people"][person_id(entry, "Tom")]
    assert [negative["source"] for negative in stored["negatives"]] == [eileen, upload]

    assert await call(hass, "delete_person", name="Eileen") == {"deleted": "Eileen"}
    assert sources(entry, "Tom") == [upload]  # the stranger's face stays Tom's negative
    stored = hass_storage[STORAGE_KEY]["data"]["people"][person_id(entry, "Tom")]
    assert [negative["source"] for negative in stored["negatives"]] == [upload]
    assert len(hass_storage[STORAGE_KEY]["data"]["people"]) == 1


async def test_a_negative_of_an_enrolled_person_is_tagged_at_once(
    hass: HomeAssistant, photo_dir: Path
) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    await call(hass, "enroll_negative", name="Tom", files=[str(photo_dir / "mirrored.jpg")])
    await call(hass, "enroll_negative", name="Eileen", files=[str(photo_dir / "stranger.jpg")])
    assert sources(entry, "Tom") == [f"person:{person_id(entry, 'Eileen')}"]
    assert sources(entry, "Eileen")[0].startswith("upload:")
    # Deleting Tom takes his own negatives and leaves Eileen's
    await call(hass, "delete_person", name="Tom")
    assert len(sources(entry, "Eileen")) == 1


async def test_negatives_of_store_version_1_are_kept_and_tagged(
    hass: HomeAssistant, photo_dir: Path, real_storage: Path
) -> None:
    entry = await set_up_entry(hass, {CONF_TIER: "balanced"})
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    files = [str(photo_dir / "mirrored.jpg"), str(photo_dir / "stranger.jpg")]
    await call(hass, "enroll_negative", name="Tom", files=files)
    assert await hass.config_entries.async_unload(entry.entry_id)
    # What version 1 wrote: the same faces, negatives without a source
    path = real_storage / STORAGE_KEY
    current = json.loads(path.read_text())
    old = {**current, "version": 1}
    for person in old["data"]["people"].values():
        for negative in person["negatives"]:
            del negative["source"]
    path.write_text(json.dumps(old))

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    eileen = f"person:{person_id(entry, 'Eileen')}"
    assert sources(entry, "Tom") == [eileen, "unknown"]  # kept; hers found to be hers
    migrated = json.loads(path.read_text())
    assert migrated["version"] == STORAGE_VERSION
    tom = migrated["data"]["people"][person_id(entry, "Tom")]
    before = current["data"]["people"][person_id(entry, "Tom")]
    assert [n["chip"] for n in tom["negatives"]] == [n["chip"] for n in before["negatives"]]
    assert [n["source"] for n in tom["negatives"]] == [eileen, "unknown"]
    assert not [p for p in real_storage.iterdir() if ".damaged." in p.name]
    assert not ir.async_get(hass).async_get_issue(DOMAIN, f"store_damaged_{STORAGE_KEY}")

    await call(hass, "delete_person", name="Eileen")
    assert sources(entry, "Tom") == ["unknown"]


async def test_a_store_of_a_newer_version_is_kept_not_read(
    hass: HomeAssistant, real_storage: Path
) -> None:
    real_storage.mkdir(parents=True, exist_ok=True)
    newer = json.dumps(
        {"version": STORAGE_VERSION + 1, "minor_version": 1, "key": STORAGE_KEY, "data": {}}
    )
    (real_storage / STORAGE_KEY).write_text(newer)
    await set_up_entry(hass, {CONF_TIER: "balanced"})
    assert ir.async_get(hass).async_get_issue(DOMAIN, f"store_damaged_{STORAGE_KEY}")
    kept = [p for p in real_storage.iterdir() if p.name.startswith(f"{STORAGE_KEY}.damaged.")]
    assert [p.read_text() for p in kept] == [newer]

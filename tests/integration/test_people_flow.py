"""The People page of the options: enrolling from the camera and from uploaded photos.

Real Home Assistant, the local_file camera showing real photos, uploads through Home
Assistant's own /api/file_upload, the shipped models. Bad input leaves a translated error
on the form and nothing stored.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from unittest.mock import patch
from uuid import uuid4

import pytest
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.compact_ai.const import CONF_PEOPLE, DOMAIN
from custom_components.compact_ai.face.manager import FaceManager
from custom_components.compact_ai.face.services import MAX_FILES
from custom_components.compact_ai.flow import people_enroll
from custom_components.compact_ai.flow.enroll import OUTCOMES

from .common import CAMERA, call, show
from .people_flow import (
    TRANSLATIONS,
    Uploader,
    after_capture,
    choose,
    outcomes,
    people_page,
    submit,
    table_rows,
    uploads_left,
)

CAMERA_FIELD = "camera"
PHOTOS = "photos"


@pytest.fixture(autouse=True)
def quick_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the flow's snapshots without the second between them (the camera is a file)."""
    monkeypatch.setattr(people_enroll, "SPACING", 0.0)


@pytest.fixture
def upload(hass_client: ClientSessionGenerator) -> Uploader:
    return Uploader(hass_client)


def people(entry: MockConfigEntry) -> dict[str, tuple[int, int]]:
    """Return name -> (faces, negatives) as stored."""
    return {
        p.name: (len(p.samples), len(p.negatives))
        for p in entry.runtime_data.people.people.values()
    }


async def test_add_a_person_from_the_camera(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path
) -> None:
    result = await people_page(hass, loaded_entry)
    assert result["type"] == "menu" and result["step_id"] == "people_empty"
    assert result["menu_options"] == ["add_person", "done"]
    result = await choose(hass, result, "add_person")
    assert result["step_id"] == "add_person"
    camera_key = next(k for k in result["data_schema"].schema if k == CAMERA_FIELD)
    assert camera_key.description["suggested_value"] == CAMERA  # the scanned camera
    placeholders = result["description_placeholders"]
    assert placeholders["scans"] == "5" and placeholders["size"] == "25"  # snapshots, MB

    result = await submit(hass, result, {CONF_NAME: "Eileen", CAMERA_FIELD: CAMERA})
    assert result["description_placeholders"]["camera"] == "Front door"
    result = await after_capture(hass, result)
    assert result["step_id"] == "enroll_result"
    assert outcomes(result) == {f"snapshot_{i}": "accepted" for i in range(1, 6)}
    placeholders = result["description_placeholders"]
    assert placeholders["enrolled"] == "5" and placeholders["total"] == "5"
    assert placeholders["chips"].count("](data:image/jpeg;base64,") == 5
    assert people(loaded_entry) == {"Eileen": (5, 0)}

    await show(hass, photo_dir / "mirrored.jpg")
    await call(hass, "scan")  # she is seen: the page says when
    result = await submit(hass, result, {})  # no other photo: back to the people
    assert result["step_id"] == "people"
    (row,) = table_rows(result)
    assert row.startswith("| Eileen | 5 | 0 | 2") and row.endswith(" |")  # | last seen |
    result = await choose(hass, result, "done")
    assert result["type"] == "create_entry"


async def test_add_a_person_from_photos_one_after_another(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    photo = await upload(photo_dir / "astronaut.jpg")
    result = await submit(hass, result, {CONF_NAME: "Eileen", PHOTOS: photo})
    assert result["step_id"] == "enroll_result"
    assert outcomes(result) == {"photo_1": "accepted"}
    assert result["description_placeholders"]["photo_1"] == "astronaut.jpg"  # the label

    result = await submit(hass, result, {PHOTOS: await upload(photo_dir / "mirrored.jpg")})
    assert outcomes(result) == {"photo_1": "accepted"}
    assert result["description_placeholders"]["total"] == "2"  # the same person, now 2 faces
    result = await submit(hass, result, {PHOTOS: await upload(photo_dir / "coffee.jpg")})
    assert outcomes(result) == {"photo_1": "no_face"}
    assert result["description_placeholders"]["total"] == "2"
    assert people(loaded_entry) == {"Eileen": (2, 0)}
    assert uploads_left() == []  # every upload was deleted once read


@pytest.mark.parametrize(
    ("photo", "outcome"),
    [
        ("not_an_image.jpg", "bad_image"),
        ("coffee.jpg", "no_face"),
        ("pair.jpg", "many_faces"),
        ("blurred.jpg", "blurry"),
    ],
)
async def test_a_photo_that_cannot_be_enrolled_stores_nobody(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    upload: Uploader,
    photo: str,
    outcome: str,
) -> None:
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    result = await submit(
        hass, result, {CONF_NAME: "Eileen", PHOTOS: await upload(photo_dir / photo)}
    )
    assert result["step_id"] == "enroll_result"
    assert outcomes(result) == {"photo_1": outcome}
    assert result["description_placeholders"]["enrolled"] == "0"
    assert result["description_placeholders"]["chips"] == ""
    assert people(loaded_entry) == {}  # nobody half-enrolled
    # a good photo next still enrolls her, as a new person
    result = await submit(hass, result, {PHOTOS: await upload(photo_dir / "astronaut.jpg")})
    assert people(loaded_entry) == {"Eileen": (1, 0)}


async def test_a_40_mb_upload_is_refused_unread(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    upload: Uploader,
    tmp_path: Path,
) -> None:
    big = tmp_path / "huge.jpg"
    with big.open("wb") as handle:
        handle.write((photo_dir / "astronaut.jpg").read_bytes())
        handle.truncate(40 * 1024 * 1024)
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    result = await submit(hass, result, {CONF_NAME: "Eileen", PHOTOS: await upload(big)})
    assert result["step_id"] == "add_person"
    assert result["errors"] == {PHOTOS: "photo_too_large"}
    assert result["description_placeholders"]["photo"] == "huge.jpg"
    assert result["description_placeholders"]["limit"] == "25"
    assert people(loaded_entry) == {} and uploads_left() == []
    key = next(k for k in result["data_schema"].schema if k == CONF_NAME)
    assert key.description["suggested_value"] == "Eileen"  # what was typed stays


async def test_30_photos_at_once_are_refused(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    """The browser sends one photo; an API client can send a list."""
    ids = [await upload(photo_dir / "astronaut.jpg") for _ in range(30)]
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    result = await submit(hass, result, {CONF_NAME: "Eileen", PHOTOS: ids})
    assert result["errors"] == {PHOTOS: "too_many_photos"}
    assert result["description_placeholders"]["count"] == "30"
    assert result["description_placeholders"]["limit"] == "10"
    assert people(loaded_entry) == {} and uploads_left() == []


async def test_an_upload_that_is_gone(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    result = await submit(hass, result, {CONF_NAME: "Eileen", PHOTOS: uuid4().hex})
    assert result["errors"] == {PHOTOS: "photo_missing"}


async def test_names_that_are_taken(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    for name, error in (
        ("Eileen", "person_exists"),
        ("eileen", "name_collision"),
        ("  ", "invalid_name"),
    ):
        photo = await upload(photo_dir / "hanks.jpg")
        result = await submit(hass, result, {CONF_NAME: name, PHOTOS: photo})
        assert result["errors"] == {CONF_NAME: error}
    assert people(loaded_entry) == {"Eileen": (1, 0)} and uploads_left() == []


async def test_camera_problems(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    result = await submit(hass, result, {CONF_NAME: "Eileen"})
    assert result["errors"] == {"base": "camera_or_photo"}
    result = await submit(hass, result, {CONF_NAME: "Eileen", CAMERA_FIELD: "camera.gone"})
    assert result["errors"] == {CAMERA_FIELD: "camera_not_found"}

    async def no_snapshot(*_args: object) -> bytes:
        raise HomeAssistantError("camera off")  # inject the failure

    with patch.object(FaceManager, "async_snapshot", no_snapshot):
        result = await submit(hass, result, {CONF_NAME: "Eileen", CAMERA_FIELD: CAMERA})
        result = await after_capture(hass, result)
    assert result["step_id"] == "add_person"
    assert result["errors"] == {CAMERA_FIELD: "camera_unavailable"}
    assert result["description_placeholders"]["camera"] == "Front door"
    key = next(k for k in result["data_schema"].schema if k == CONF_NAME)
    assert key.description["suggested_value"] == "Eileen"
    assert people(loaded_entry) == {}


async def test_more_faces_and_negatives(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    ids = {p.name: p.person_id for p in loaded_entry.runtime_data.people.people.values()}
    page = await people_page(hass, loaded_entry)
    assert page["step_id"] == "people"
    assert page["menu_options"] == [
        "add_person",
        "add_faces",
        "add_negative",
        "edit_person",
        "done",
    ]
    assert table_rows(page) == ["| Eileen | 1 | 0 | - |", "| Tom | 1 | 0 | - |"]

    result = await choose(hass, page, "add_faces")
    photo = await upload(photo_dir / "mirrored.jpg")
    result = await submit(hass, result, {"person": ids["Eileen"], PHOTOS: photo})
    assert result["step_id"] == "enroll_result"
    assert result["description_placeholders"]["total"] == "2"

    result = await choose(hass, await people_page(hass, loaded_entry), "add_negative")
    key = next(k for k in result["data_schema"].schema if k == CONF_PEOPLE)
    assert sorted(key.description["suggested_value"]) == sorted(ids.values())  # everyone
    result = await submit(hass, result, {CONF_PEOPLE: [], CAMERA_FIELD: CAMERA})
    assert result["errors"] == {CONF_PEOPLE: "people_required"}
    await show(hass, photo_dir / "hanks.jpg")  # Tom's look-alike must never be Eileen
    result = await submit(hass, result, {CONF_PEOPLE: [ids["Eileen"]], CAMERA_FIELD: CAMERA})
    result = await after_capture(hass, result)
    assert result["step_id"] == "negative_result"
    assert result["description_placeholders"]["enrolled"] == "5"
    assert people(loaded_entry) == {"Eileen": (2, 5), "Tom": (1, 0)}


async def test_a_person_deleted_meanwhile(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    eileen = loaded_entry.runtime_data.people.find("Eileen").person_id
    result = await choose(hass, await people_page(hass, loaded_entry), "add_faces")
    await call(hass, "delete_person", name="Eileen")  # in another window
    photo = await upload(photo_dir / "mirrored.jpg")
    result = await submit(hass, result, {"person": eileen, PHOTOS: photo})
    assert result["errors"] == {"person": "person_not_found"}
    assert people(loaded_entry) == {} and uploads_left() == []


async def test_the_people_page_needs_the_face_models(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, options={})
    entry.add_to_hass(hass)  # not set up: no models
    result = await people_page(hass, entry)
    assert result["type"] == "abort" and result["reason"] == "models_unavailable"


async def test_negatives_for_everyone_and_a_bad_photo_after_a_round(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    photo_dir: Path,
    upload: Uploader,
    tmp_path: Path,
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "mirrored.jpg")])
    everyone = [p.person_id for p in loaded_entry.runtime_data.people.people.values()]
    result = await choose(hass, await people_page(hass, loaded_entry), "add_negative")
    photo = await upload(photo_dir / "hanks.jpg")
    result = await submit(hass, result, {CONF_PEOPLE: everyone, PHOTOS: photo})
    assert result["step_id"] == "negative_result"
    assert result["description_placeholders"]["person"] == "Eileen, Tom"
    assert people(loaded_entry) == {"Eileen": (1, 1), "Tom": (1, 1)}

    big = tmp_path / "huge.jpg"
    big.write_bytes(b"\xff" * (26 * 1024 * 1024))
    result = await submit(hass, result, {PHOTOS: await upload(big)})
    assert result["step_id"] == "negative_result"
    assert result["errors"] == {PHOTOS: "photo_too_large"}
    assert people(loaded_entry) == {"Eileen": (1, 1), "Tom": (1, 1)} and uploads_left() == []


async def test_the_progress_dialog_while_the_snapshots_are_taken(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    go_on = asyncio.Event()
    real = FaceManager.async_snapshot

    async def slow_camera(self: FaceManager, camera: str) -> bytes:  # a camera that takes time
        await go_on.wait()
        return await real(self, camera)

    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    with patch.object(FaceManager, "async_snapshot", slow_camera):
        result = await submit(hass, result, {CONF_NAME: "Eileen", CAMERA_FIELD: CAMERA})
        again = await hass.config_entries.options.async_configure(result["flow_id"])
        assert again["type"] == "progress"  # asked again (the frontend does): still taking them
        go_on.set()
        result = await after_capture(hass, result)
    assert result["step_id"] == "enroll_result"


async def test_the_entry_unloaded_while_the_page_is_open(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, photo_dir: Path, upload: Uploader
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    pages = [await people_page(hass, loaded_entry) for _ in range(3)]
    result = await choose(hass, await people_page(hass, loaded_entry), "add_person")
    photo = await upload(photo_dir / "mirrored.jpg")
    result = await submit(hass, result, {CONF_NAME: "Tom", PHOTOS: photo})
    assert result["step_id"] == "enroll_result"
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    for page, step in zip(pages, ("add_person", "edit_person", "add_faces"), strict=True):
        assert (await choose(hass, page, step))["reason"] == "models_unavailable"
    assert (await submit(hass, result, {}))["reason"] == "models_unavailable"


@pytest.mark.parametrize("language", ["en", "zh-Hans"])
def test_every_outcome_and_person_error_is_translated(language: str) -> None:
    texts = json.loads((TRANSLATIONS / f"{language}.json").read_text())
    assert set(texts["selector"]["enroll_outcome"]["options"]) == set(OUTCOMES)
    people_errors = {  # what People.check_room, resolve and rename raise
        "invalid_name",
        "person_exists",
        "name_collision",
        "person_not_found",
        "person_full",
        "person_room",
        "too_many_people",
    }
    assert people_errors <= set(texts["options"]["error"])
    for step in ("enroll_result", "negative_result"):
        labels = set(texts["options"]["step"][step]["data"])
        assert {f"snapshot_{i}" for i in range(1, people_enroll.SNAPSHOTS + 1)} <= labels
        assert {f"photo_{i}" for i in range(1, MAX_FILES + 1)} <= labels

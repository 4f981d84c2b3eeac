"""Face recognition and enrollment in a real Home Assistant with real models and photos."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai.const import CONF_CAMERAS, CONF_TIER, DOMAIN
from custom_components.compact_ai.face.people import STORAGE_VERSION

from .common import CAMERA, call, show


@pytest.fixture
def entry(loaded_entry: MockConfigEntry) -> MockConfigEntry:
    """The loaded Compact AI entry watching the front door camera."""
    return loaded_entry


async def test_enroll_from_files_and_recognize(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    result = await call(
        hass,
        "enroll_face",
        name="  Eileen   Collins ",
        files=[str(photo_dir / "astronaut.jpg"), str(photo_dir / "coffee.jpg")],
    )
    assert result["person"] == "Eileen Collins"
    assert result["enrolled"] == 1
    assert result["rejected"] == [{"source": str(photo_dir / "coffee.jpg"), "reason": "no_face"}]
    assert await call(hass, "list_people") == {
        "people": [{"name": "Eileen Collins", "samples": 1, "negatives": 0}]
    }

    events: list[Event] = []
    hass.bus.async_listen("state_changed", events.append)
    await show(hass, photo_dir / "mirrored.jpg")
    response = await call(hass, "scan")
    (face,) = response["cameras"][CAMERA]["faces"]
    assert face["person"] == "Eileen Collins" and face["status"] == "match"
    assert 0 <= face["distance"] < 0.6
    assert "embedding" not in str(response)
    await hass.async_block_till_done()
    event = hass.states.get("event.front_door_faces_face")
    assert event is not None
    assert event.attributes["event_type"] == "recognized"
    assert event.attributes["person"] == "Eileen Collins"
    assert hass.states.get("sensor.front_door_faces_last_person").state == "Eileen Collins"
    assert float(hass.states.get("sensor.front_door_faces_inference_time").state) > 0

    await show(hass, photo_dir / "hanks.jpg")
    response = await call(hass, "scan", entity_id=[CAMERA])
    (face,) = response["cameras"][CAMERA]["faces"]
    assert face["person"] is None and face["status"] == "unknown"
    await hass.async_block_till_done()
    assert hass.states.get("event.front_door_faces_face").attributes["event_type"] == "unknown"
    assert hass.states.get("sensor.front_door_faces_last_person").state == "unknown"


async def test_enroll_from_camera(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    result = await call(hass, "enroll_face", name="Eileen", camera=CAMERA, snapshots=2, interval=0)
    assert result == {"person": "Eileen", "enrolled": 2, "rejected": []}


@pytest.mark.parametrize(
    ("photo", "reason"),
    [
        ("pair.jpg", "many_faces"),
        ("coffee.jpg", "no_face"),
        ("blurred.jpg", "blurry"),
        ("tiny.jpg", "no_face|too_small"),
        ("not_an_image.jpg", "bad_image"),
    ],
)
async def test_quality_gate_rejects(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, photo: str, reason: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / photo)])
    assert err.value.translation_key == "nothing_enrolled"
    assert err.value.translation_placeholders["reasons"] in reason.split("|")
    assert await call(hass, "list_people") == {"people": []}


async def test_negative_blocks_a_match(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await call(hass, "enroll_negative", name="Eileen", files=[str(photo_dir / "mirrored.jpg")])
    await show(hass, photo_dir / "mirrored.jpg")
    response = await call(hass, "scan")
    (face,) = response["cameras"][CAMERA]["faces"]
    assert face["status"] == "unknown"


async def test_delete_person(hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "delete_person", name="eileen")  # names match exactly
    assert err.value.translation_key == "person_not_found"
    assert await call(hass, "delete_person", name=" Eileen ") == {"deleted": "Eileen"}
    assert await call(hass, "list_people") == {"people": []}
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "delete_person", name="Eileen")
    assert err.value.translation_key == "person_not_found"


async def test_people_survive_a_restart(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, hass_storage: dict[str, Any]
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    stored = hass_storage["compact_ai.people"]
    assert stored["version"] == STORAGE_VERSION
    (person,) = stored["data"]["people"].values()
    assert person["name"] == "Eileen" and len(person["samples"][0]["embedding"]) == 128

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await show(hass, photo_dir / "mirrored.jpg")
    response = await call(hass, "scan")
    assert response["cameras"][CAMERA]["faces"][0]["person"] == "Eileen"


async def test_embeddings_recomputed_when_the_embedder_changes(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, hass_storage: dict[str, Any]
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    people = entry.runtime_data.people
    eileen = people.find("Eileen")
    assert eileen is not None
    original = list(eileen.samples[0].embedding)
    # As if the embeddings came from another tier's embedder: they must be recomputed
    # from the kept chips, never mixed.
    eileen.samples[0].embedding = [0.0] * 128
    people.embedder = "another-embedder"
    await people.async_save()

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    samples = entry.runtime_data.people.people[eileen.person_id].samples
    # Recomputed from the stored JPEG chip: the same face, far inside the tier's threshold.
    threshold = entry.runtime_data.faces.recognizer.threshold
    assert np.linalg.norm(np.subtract(samples[0].embedding, original)) < 0.15 * threshold
    assert entry.runtime_data.people.embedder == entry.runtime_data.faces.recognizer.embedder_id


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"name": "Eileen"}, "camera_or_files"),
        ({"name": "Eileen", "camera": CAMERA, "files": ["/x.jpg"]}, "camera_or_files"),
        ({"name": "Eileen", "camera": "camera.gone"}, "camera_not_found"),
        ({"name": "Eileen", "files": ["/etc/passwd"]}, "path_not_allowed"),
        ({"name": "!!!", "files": ["{photos}/astronaut.jpg"]}, "invalid_name"),
        ({"name": "Eileen", "files": ["{photos}/missing.jpg"]}, "file_unreadable"),
    ],
)
async def test_enroll_bad_requests(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path, data: dict[str, Any], key: str
) -> None:
    if "files" in data:
        data = {**data, "files": [f.format(photos=photo_dir) for f in data["files"]]}
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_face", **data)
    assert err.value.translation_key == key
    assert await call(hass, "list_people") == {"people": []}


async def test_person_cap(hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path) -> None:
    files = [str(photo_dir / "astronaut.jpg")] * 10
    await call(hass, "enroll_face", name="Eileen", files=files)
    await call(hass, "enroll_face", name="Eileen", files=files, add_to_existing=True)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "enroll_face", name="Eileen", files=files[:1], add_to_existing=True)
    assert err.value.translation_key == "person_full"
    assert (await call(hass, "list_people"))["people"][0]["samples"] == 20


async def test_scan_bad_camera_content(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    await show(hass, photo_dir / "not_an_image.jpg")
    response = await call(hass, "scan")
    assert response["cameras"][CAMERA] == {"faces": [], "error": "bad_image"}
    gone = photo_dir / "gone.jpg"
    gone.write_bytes((photo_dir / "astronaut.jpg").read_bytes())
    await show(hass, gone)
    gone.unlink()
    response = await call(hass, "scan")
    assert response["cameras"][CAMERA]["error"] == "camera_unavailable"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "scan", entity_id=["camera.garden"])
    assert err.value.translation_key == "camera_not_configured"


async def test_several_faces_in_one_frame(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    await show(hass, photo_dir / "pair.jpg")
    response = await call(hass, "scan")
    faces = response["cameras"][CAMERA]["faces"]
    assert [face["person"] for face in faces] == ["Eileen", "Eileen"]


async def test_tampered_models_make_entities_unavailable(
    hass: HomeAssistant, camera_entity: str, tmp_path: Path
) -> None:
    import shutil
    from unittest.mock import patch

    from custom_components.compact_ai.const import PACK_DIR

    broken = shutil.copytree(PACK_DIR, tmp_path / "pack")
    for embedder in broken.glob("*/face_embedder.*"):  # whichever backend runs
        if embedder.suffix != ".param":
            embedder.write_bytes(b"tampered")

    entry = MockConfigEntry(
        domain=DOMAIN, options={CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]}
    )
    entry.add_to_hass(hass)
    with patch("custom_components.compact_ai.const.PACK_DIR", broken):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert hass.states.get("event.front_door_faces_face").state == "unavailable"
    assert hass.states.get("sensor.front_door_faces_last_person").state == "unavailable"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, "models_unusable")
    assert issue is not None and "face_embedder" in issue.translation_placeholders["error"]
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "scan")
    assert err.value.translation_key == "models_unavailable"


async def test_doorbell_trigger_and_interval_start_scans(
    hass: HomeAssistant, camera_entity: str, photo_dir: Path
) -> None:
    from datetime import timedelta

    from homeassistant.util import dt as dt_util
    from pytest_homeassistant_custom_component.common import async_fire_time_changed

    hass.states.async_set("binary_sensor.doorbell", "off")
    entry = MockConfigEntry(
        domain=DOMAIN,
        options={
            CONF_TIER: "balanced",
            CONF_CAMERAS: [camera_entity],
            "triggers": ["binary_sensor.doorbell"],
            "scan_interval": 60,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("event.front_door_faces_face").state == "unknown"  # never fired
    fired: list[Event] = []
    hass.bus.async_listen(
        "state_changed",
        lambda e: fired.append(e) if e.data["entity_id"] == "event.front_door_faces_face" else None,
    )

    hass.states.async_set("binary_sensor.doorbell", "on")
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(fired) == 1
    assert fired[0].data["new_state"].attributes["event_type"] == "unknown"  # nobody enrolled

    hass.states.async_set("binary_sensor.doorbell", "on", {"still": "pressed"})
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(fired) == 1  # still on: no new scan

    report = entry.runtime_data.faces.last_report(camera_entity)
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=61))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.faces.last_report(camera_entity) is not report  # periodic scan

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_a_scan_in_flight_ends_when_the_entry_unloads(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    started = asyncio.Event()

    async def hung_camera(*_args: Any, **_kwargs: Any) -> Any:  # inject a camera that never answers
        started.set()
        await asyncio.Event().wait()

    with patch("custom_components.compact_ai.face.manager.async_get_image", hung_camera):
        scan = asyncio.ensure_future(loaded_entry.runtime_data.faces.async_scan(CAMERA))
        await started.wait()
        assert await hass.config_entries.async_unload(loaded_entry.entry_id)
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(10):  # a scan left running would hang here
                await scan


async def test_a_non_finite_embedding_is_never_stored_or_matched(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    """An embedder run that returns NaN: nobody is enrolled or recognized from it."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    embedder = entry.runtime_data.faces.recognizer.pipeline.embedder
    broken = [np.full((1, 128), np.nan, np.float32)]
    with patch.object(embedder, "run", return_value=broken):  # inject the failure
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
        assert err.value.translation_key == "nothing_enrolled"
        assert err.value.translation_placeholders["reasons"] == "no_embedding"
        await show(hass, photo_dir / "mirrored.jpg")
        response = await call(hass, "scan")
        assert response["cameras"][CAMERA] == {"faces": [], "error": "inference_failed"}
    assert await call(hass, "list_people") == {
        "people": [{"name": "Eileen", "samples": 1, "negatives": 0}]
    }
    (face,) = (await call(hass, "scan"))["cameras"][CAMERA]["faces"]  # the model works again
    assert face["person"] == "Eileen" and face["status"] == "match"


async def test_a_degenerate_embedding_is_never_matched(
    hass: HomeAssistant, entry: MockConfigEntry, photo_dir: Path
) -> None:
    """Zeros are 1.0 from every unit-length embedding (inside the naming threshold): refused."""
    await call(hass, "enroll_face", name="Eileen", files=[str(photo_dir / "astronaut.jpg")])
    embedder = entry.runtime_data.faces.recognizer.pipeline.embedder
    for broken in (np.zeros((1, 128), np.float32), np.full((1, 128), 1e20, np.float32)):
        with patch.object(embedder, "run", return_value=[broken]):  # inject the failure
            await show(hass, photo_dir / "hanks.jpg")
            report = (await call(hass, "scan"))["cameras"][CAMERA]
        assert report == {"faces": [], "error": "inference_failed"}

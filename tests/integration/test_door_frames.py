"""Door-camera frames in a real Home Assistant: small faces in 1080p snapshots, real models.

The frames are made here from shipped photos: the astronaut's head (enrolled from the
close-up photo) pasted small into a 1920x1080 scene, as a doorbell sees a visitor 1-3 m away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from homeassistant.core import HomeAssistant
from PIL import Image, ImageOps
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.images import png_header_only

from .common import CAMERA, call, show
from .test_door import door_event, setup_door

HEAD = (120, 20, 340, 240)  # the astronaut's head in the photo, face about 110 of 220 px
FACE_IN_HEAD = 0.5
FRAME = (1920, 1080)


def door_frame(
    photo_dir: Path, face: int, at: tuple[int, int], size: tuple[int, int] = FRAME
) -> Image.Image:
    """A scene (the coffee photo, scaled up) with her head pasted so her face is ``face`` px."""
    astronaut = Image.open(photo_dir / "astronaut.jpg")
    scene = ImageOps.fit(Image.open(photo_dir / "coffee.jpg"), size)
    side = round(face / FACE_IN_HEAD)
    scene.paste(astronaut.crop(HEAD).resize((side, side), Image.Resampling.LANCZOS), at)
    return scene


@pytest.fixture
def frames(photo_dir: Path) -> Path:
    """1080p door frames (JPEG q85, as a camera sends them) and bad variants of one."""
    door_frame(photo_dir, 96, (1200, 300)).save(photo_dir / "door.jpg", quality=85)
    door_frame(photo_dir, 100, (1190, 310)).save(photo_dir / "door2.jpg", quality=85)
    night = door_frame(photo_dir, 96, (600, 250)).convert("L")
    night.save(photo_dir / "night.jpg", quality=85)
    door_frame(photo_dir, 96, (1200, 300)).convert("CMYK").save(photo_dir / "cmyk.jpg")
    door_frame(photo_dir, 96, (1200, 300)).quantize(128).save(photo_dir / "palette.png")
    grey = np.asarray(door_frame(photo_dir, 96, (1200, 300)).convert("L"), dtype=np.uint16)
    Image.fromarray(grey * 257).save(photo_dir / "deep.png")  # 16-bit, full range
    for name in ("door.jpg", "palette.png"):
        data = (photo_dir / name).read_bytes()
        (photo_dir / f"cut{Path(name).suffix}").write_bytes(data[: len(data) // 2])
    door_frame(photo_dir, 96, (1200, 300)).crop((0, 500, 1920, 516)).save(photo_dir / "strip.jpg")
    (photo_dir / "bomb.png").write_bytes(png_header_only(8000, 6000))  # 48 MP promised
    door_frame(photo_dir, 48, (40, 20), (160, 120)).save(photo_dir / "thumb.jpg", quality=85)
    door_frame(photo_dir, 400, (7000, 400), (16000, 2000)).save(photo_dir / "wide.jpg")
    # A stranger's head (300 px) with a small print of her face held over his eye.
    prints = (
        ("held.jpg", 120, (930, 250)),
        ("held2.jpg", 130, (925, 245)),
        ("held3.jpg", 140, (920, 240)),
    )
    for name, side, at in prints:
        held = ImageOps.fit(Image.open(photo_dir / "coffee.jpg"), FRAME)
        held.paste(Image.open(photo_dir / "hanks.jpg").resize((300, 300)), (800, 200))
        print_ = Image.open(photo_dir / "astronaut.jpg").crop(HEAD).resize((side, side))
        held.paste(print_, at)
        held.save(photo_dir / name, quality=85)
    crowd = Image.open(photo_dir / "door.jpg")
    head = Image.open(photo_dir / "astronaut.jpg").crop(HEAD).resize((150, 150))
    for index in range(50):
        crowd.paste(head, (30 + (index % 10) * 188, 20 + (index // 10) * 210))
    crowd.save(photo_dir / "crowd50.jpg", quality=85)
    return photo_dir


async def scan(hass: HomeAssistant, photo: Path) -> dict[str, object]:
    await show(hass, photo)
    report: dict[str, object] = (await call(hass, "scan"))["cameras"][CAMERA]
    await hass.async_block_till_done()
    return report


async def test_a_visitor_at_door_distance_is_recognized(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, frames: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(frames / "astronaut.jpg")])
    report = await scan(hass, frames / "door.jpg")
    (face,) = report["faces"]  # type: ignore[misc]
    assert face["person"] == "Eileen"
    assert 1150 < face["box"][0] < 1300 and 250 < face["box"][1] < 400  # in frame pixels
    assert hass.states.get("sensor.front_door_faces_last_person").state == "Eileen"
    last = loaded_entry.runtime_data.faces.last_report(CAMERA)
    assert last is not None and last.scan is not None
    stages = last.scan.stage_ms
    assert stages["decode"] > 0  # the frame time includes decoding the snapshot
    sensor = float(hass.states.get("sensor.front_door_faces_inference_time").state)
    assert sensor == pytest.approx(sum(stages.values()), abs=0.06)


async def test_a_grey_night_frame_is_recognized(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, frames: Path
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(frames / "astronaut.jpg")])
    (face,) = (await scan(hass, frames / "night.jpg"))["faces"]  # type: ignore[misc]
    assert face["person"] == "Eileen"


async def test_the_door_sees_a_visitor_at_door_distance(
    hass: HomeAssistant, camera_entity: str, door_lock: str, frames: Path
) -> None:
    # Liveness off: two flat pastes of one photo are what liveness exists to refuse.
    await setup_door(hass, camera_entity, door_lock, frames, liveness=False)
    await scan(hass, frames / "door.jpg")
    assert hass.states.get(door_lock).state == "locked"  # one frame is not enough
    await scan(hass, frames / "door2.jpg")
    assert hass.states.get(door_lock).state == "unlocked"
    event = door_event(hass)
    assert event["person"] == "Eileen" and event["reason"] == "matched"


async def test_a_stranger_holding_her_print_over_his_eye_stays_locked(
    hass: HomeAssistant, camera_entity: str, door_lock: str, frames: Path
) -> None:
    """His face is an unknown face, or YuNet's alone around her print: either way it counts."""
    await setup_door(hass, camera_entity, door_lock, frames, liveness=False)
    for name in ("held.jpg", "held2.jpg", "held3.jpg"):
        report = await scan(hass, frames / name)
        names = [face["person"] for face in report["faces"]]  # type: ignore[attr-defined]
        assert set(names) <= {"Eileen", None} and len(names) <= 2
        assert hass.states.get(door_lock).state == "locked"
    assert door_event(hass)["reason"] == "unknown_face"


async def test_fifty_faces_at_the_door_deny(
    hass: HomeAssistant, camera_entity: str, door_lock: str, frames: Path
) -> None:
    await setup_door(hass, camera_entity, door_lock, frames, liveness=False)
    report = await scan(hass, frames / "crowd50.jpg")
    assert len(report["faces"]) == 10  # type: ignore[arg-type]
    assert door_event(hass)["reason"] == "too_many_faces"
    assert hass.states.get(door_lock).state == "locked"


@pytest.mark.parametrize(
    ("name", "faces", "error"),
    [
        ("cmyk.jpg", 1, None),
        ("palette.png", 1, None),
        ("deep.png", 1, None),
        ("thumb.jpg", 1, None),
        ("wide.jpg", 1, None),
        ("strip.jpg", 0, None),
        ("cut.jpg", 0, "bad_image"),
        ("cut.png", 0, "bad_image"),
        ("bomb.png", 0, "bad_image"),
    ],
)
async def test_odd_frames_give_a_clear_result(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    frames: Path,
    name: str,
    faces: int,
    error: str | None,
) -> None:
    await call(hass, "enroll_face", name="Eileen", files=[str(frames / "astronaut.jpg")])
    report = await scan(hass, frames / name)
    assert report["error"] == error
    found = report["faces"]
    assert isinstance(found, list) and len(found) == faces
    assert all(face["person"] == "Eileen" for face in found)

"""Door calibration on door-camera frames: the shipped models, real photos pasted into 1080p."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from custom_components.compact_ai.const import PACK_DIR
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.errors import ToolError
from tools.compact.pack.door_frames import GAP, calibrate_door, door_distance
from tools.compact.pack.report import door_lines
from tools.compact.pack.sources import source_path

HEAD = (120, 20, 340, 240)  # the astronaut's head, her face about half of it
TIERS = ("accurate", "balanced", "fast")


def test_the_door_distance_only_ever_goes_down() -> None:
    assert door_distance(0.97, 1.5) == 0.97  # frames farther than the crops: unchanged
    assert door_distance(1.04, 0.993) == 0.97  # SFace's 48 px impostor, minus the gap, floored
    assert door_distance(1.04, 1.0 + GAP) == 1.0
    assert door_distance(1.04, 0.03) == 0.01  # float error in 0.03 - 0.02 does not floor to 0
    for closest in (GAP, GAP + 0.005, 0.0, -1.0, math.nan):  # floored to 0: no door
        with pytest.raises(ToolError, match="no door distance is safe"):
            door_distance(1.04, closest)


def _frame(face: Image.Image, side: int) -> Image.Image:
    """A 1080p scene with ``face`` pasted ``side`` px wide."""
    scene = ImageOps.fit(Image.open(source_path("coffee.png")).convert("RGB"), (1920, 1080))
    scene.paste(face.resize((side, side), Image.Resampling.LANCZOS), (1100, 300))
    return scene


@pytest.fixture
def door_data(tmp_path: Path) -> tuple[Path, Path]:
    """Crops of two people (Eileen enrolled, Tom the impostor) and 96 px door frames of both."""
    eileen = Image.open(source_path("astronaut.png")).convert("RGB")
    tom = Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB")
    faces, frames = tmp_path / "faces", tmp_path / "frames"
    for person, photo in (("a_eileen", eileen), ("b_tom", tom)):
        (faces / person).mkdir(parents=True)
        photo.save(faces / person / "close.jpg", quality=95)
        photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(faces / person / "mirror.jpg")
        (frames / "doorcam_96" / person).mkdir(parents=True)
    _frame(eileen.crop(HEAD), 192).save(frames / "doorcam_96" / "a_eileen" / "door.jpg", quality=85)
    _frame(tom, 200).save(frames / "doorcam_96" / "b_tom" / "door.jpg", quality=85)  # a face chip
    return faces, frames


def _pack(tmp_path: Path) -> Path:
    root = tmp_path / "pack"
    shutil.copytree(PACK_DIR, root)
    return root


def _unlock(root: Path, tier: str) -> float:
    return float(ModelPack.load(root).model(tier, "face_embedder").config["unlock_threshold"])


def _crops(root: Path, tier: str) -> float:
    """The door distance the close-ups alone allow."""
    entry = ModelPack.load(root).model(tier, "face_embedder")
    return float(entry.metrics.get("unlock_threshold_crops", entry.config["unlock_threshold"]))


def test_a_look_alike_at_the_door_lowers_the_door_distance(
    tmp_path: Path, door_data: tuple[Path, Path]
) -> None:
    """A frame of someone else as close to Eileen as her own frame: the door shuts before it."""
    faces, frames = door_data
    lookalike = Image.open(frames / "doorcam_96" / "a_eileen" / "door.jpg")
    lookalike.save(frames / "doorcam_96" / "b_tom" / "lookalike.jpg", quality=80)
    root = _pack(tmp_path)
    crops = {tier: _crops(root, tier) for tier in TIERS}
    shipped = {tier: _unlock(root, tier) for tier in TIERS}
    measured = calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    pack = ModelPack.load(root)  # still a valid, verified pack
    # one embedder on every tier: one door, the lowest any tier's frames need
    lowest = min(door_distance(shipped[t], measured[t]["closest_impostor_frame"]) for t in TIERS)
    for tier in TIERS:
        result = measured[tier]
        closest = result["closest_impostor_frame"]
        assert closest < shipped[tier] - GAP  # the attack: inside the pack's door
        assert _unlock(root, tier) == result["unlock_threshold"] == lowest
        assert _unlock(root, tier) <= closest - GAP
        metrics = pack.model(tier, "face_embedder").metrics
        assert metrics["unlock_threshold_crops"] == crops[tier]
        assert f"{closest:.3f}" in metrics["door_calibration"]
        assert set(metrics["door_tar_frames"]) == {"doorcam_96_onnxruntime", "doorcam_96_ncnn"}
    again = calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    assert {t: again[t]["unlock_threshold"] for t in TIERS} == {  # the same frames: no change
        t: measured[t]["unlock_threshold"] for t in TIERS
    }


def test_frames_farther_than_the_crops_keep_the_door(
    tmp_path: Path, door_data: tuple[Path, Path]
) -> None:
    """Tom's own frame is far from Eileen: the pack's door holds (never widened to the crops')."""
    faces, frames = door_data
    root = _pack(tmp_path)
    shipped = {tier: _unlock(root, tier) for tier in TIERS}
    assert all(shipped[tier] <= _crops(root, tier) for tier in TIERS)
    measured = calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    for tier in TIERS:
        assert _crops(root, tier) + GAP < measured[tier]["closest_impostor_frame"] < math.inf
        assert measured[tier]["unlock_threshold"] == _unlock(root, tier) == shipped[tier]
        assert measured[tier]["door_tar_frames"] == {
            "doorcam_96_onnxruntime": 1.0,
            "doorcam_96_ncnn": 1.0,
        }
        assert measured[tier]["door_tar"] == 1.0  # her mirrored crop
    lines = door_lines(measured)  # the model report's lines
    assert "owners' TAR there on frames (ORT / ncnn): doorcam_96 100% / 100%." in lines[1]


def test_a_second_calibration_never_widens_the_door(
    tmp_path: Path, door_data: tuple[Path, Path]
) -> None:
    """Frames that miss the look-alike an earlier run found do not undo its calibration."""
    faces, frames = door_data
    lookalike = Image.open(frames / "doorcam_96" / "a_eileen" / "door.jpg")
    lookalike.save(frames / "doorcam_96" / "b_tom" / "lookalike.jpg", quality=80)
    root = _pack(tmp_path)
    calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    first = {tier: _unlock(root, tier) for tier in TIERS}
    (frames / "doorcam_96" / "b_tom" / "lookalike.jpg").unlink()  # not captured this time
    calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    assert {tier: _unlock(root, tier) for tier in TIERS} == first


def test_a_crop_impostor_inside_the_door_is_an_error(
    tmp_path: Path, door_data: tuple[Path, Path]
) -> None:
    """A pack whose crops' door already lets a look-alike in is not repaired silently."""
    faces, frames = door_data
    shutil.copyfile(faces / "a_eileen" / "mirror.jpg", faces / "b_tom" / "lookalike.jpg")
    root = _pack(tmp_path)
    manifest_before = (root / "manifest.json").read_bytes()
    with pytest.raises(ToolError, match="a crop impostor came to"):
        calibrate_door(root, frames, faces, frozenset(), protocol=(1, 1))
    assert (root / "manifest.json").read_bytes() == manifest_before


def test_no_door_frames_is_an_error(tmp_path: Path, door_data: tuple[Path, Path]) -> None:
    faces, _ = door_data
    with pytest.raises(ToolError, match="no <kind>_<W> folders"):
        calibrate_door(_pack(tmp_path), tmp_path, faces, frozenset())

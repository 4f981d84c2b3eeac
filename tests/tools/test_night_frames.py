"""night-frames: grey and IR-like copies of door frames, found by the tier's own pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from custom_components.compact_ai.const import PACK_DIR
from custom_components.compact_ai.engine.face.recognizer import load_pipeline
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.cli import main
from tools.compact.errors import ToolError
from tools.compact.evaluate.night_frames import night_frames
from tools.compact.pack.sources import source_path


def _door_frames(root: Path) -> Path:
    """doorcam_96/tom/door.jpg: Tom Hanks's photo 200 px wide in a 1080p scene."""
    scene = ImageOps.fit(Image.open(source_path("coffee.png")).convert("RGB"), (1920, 1080))
    tom = Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB")
    scene.paste(tom.resize((200, 200), Image.Resampling.LANCZOS), (1100, 300))
    (root / "doorcam_96" / "tom").mkdir(parents=True)
    scene.save(root / "doorcam_96" / "tom" / "door.jpg", quality=85)
    return root


def test_grey_and_ir_copies_keep_the_face(tmp_path: Path) -> None:
    frames = _door_frames(tmp_path / "frames")
    assert night_frames(frames, [96]) == {"gray_96": 1, "ir_96": 1}
    colour = np.asarray(Image.open(frames / "doorcam_96/tom/door.jpg").convert("L"), np.float64)
    gray, ir = (Image.open(frames / f"{kind}_96/tom/door.jpg") for kind in ("gray", "ir"))
    assert gray.mode == ir.mode == "L" and gray.size == ir.size == (1920, 1080)
    assert np.abs(np.asarray(gray, np.float64) - colour).mean() < 2.0  # the same picture, grey
    low, high = np.percentile(np.asarray(ir), (1, 99))
    assert low < 15 and high > 240  # stretched to the full range
    pipeline = load_pipeline(ModelPack.load(PACK_DIR), "balanced", "onnxruntime", threads=1)
    for kind in ("gray", "ir"):
        found = pipeline.scan((frames / f"{kind}_96/tom/door.jpg").read_bytes())
        assert len(found.faces) == 1, kind
        box = found.faces[0].detection.box
        assert 1100 <= (box[0] + box[2]) / 2 <= 1300 and 300 <= (box[1] + box[3]) / 2 <= 500


def test_a_rerun_writes_the_same_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = _door_frames(tmp_path / "frames")
    assert main(["night-frames", "--frames", str(frames), "--widths", "96"]) == 0
    assert "ir_96: 1 frames" in capsys.readouterr().out
    first = (frames / "ir_96/tom/door.jpg").read_bytes()
    night_frames(frames, [96])
    assert (frames / "ir_96/tom/door.jpg").read_bytes() == first


def test_a_width_without_frames_is_named(tmp_path: Path) -> None:
    frames = _door_frames(tmp_path / "frames")
    with pytest.raises(ToolError, match=r"doorcam_64: no frames .*--widths 64"):
        night_frames(frames, [64])

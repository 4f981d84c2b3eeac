"""``detect-recall``: detection recall against hand-drawn boxes, on a real group photo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tools.compact.cli import main
from tools.compact.errors import ToolError
from tools.compact.evaluate.detection import read_boxes
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")
# The six faces of insightface's t1.jpg (x0, y0, x1, y1), drawn by hand.
T1_FACES = (
    (52, 275, 168, 391),
    (267, 168, 372, 272),
    (461, 288, 577, 404),
    (730, 363, 825, 457),
    (868, 72, 1001, 204),
    (1128, 294, 1222, 388),
)


def imglab(boxes: tuple[tuple[int, int, int, int], ...], ignored: int = 0) -> str:
    rows = "".join(
        f"<box top='{y0}' left='{x0}' width='{x1 - x0}' height='{y1 - y0}'/>"
        for x0, y0, x1, y1 in boxes
    )
    rows += "<box top='0' left='0' width='10' height='10' ignore='1'/>" * ignored
    return f"<dataset><images><image file='t1.jpg'>{rows}</image></images></dataset>"


def test_every_face_of_the_group_photo_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(source_path("t1.jpg"), tmp_path / "x_t1.jpg")
    (tmp_path / "boxes.xml").write_text(imglab(T1_FACES, ignored=1))
    args = ["detect-recall", "--tier", "reference", "--images", str(tmp_path)]
    args += ["--boxes", str(tmp_path / "boxes.xml"), "--prefix", "x_", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faces"] == 6  # the ignored box is not counted
    assert report["recall"] == 1.0 and report["false_detections"] == 0
    assert main([*args, "--detector", "short"]) == 0  # BlazeFace alone: these are too small
    assert json.loads(capsys.readouterr().out)["recall"] < 1.0


def test_an_image_that_is_missing_is_a_tool_error(tmp_path: Path) -> None:
    (tmp_path / "boxes.xml").write_text(imglab(T1_FACES))
    with pytest.raises(ToolError, match=r"t1\.jpg is not in"):
        read_boxes([tmp_path / "boxes.xml"], tmp_path)
    (tmp_path / "broken.xml").write_text("<dataset>")
    with pytest.raises(ToolError, match=r"broken\.xml"):
        read_boxes([tmp_path / "broken.xml"], tmp_path)

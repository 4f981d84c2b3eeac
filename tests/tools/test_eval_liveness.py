"""``liveness``: the benchmark runs the shipped detectors on every family and reports rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from tools.compact.cli import main
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")


def test_liveness_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    person = tmp_path / "faces" / "Eileen_Collins"
    person.mkdir(parents=True)
    face = Image.open(source_path("astronaut.png")).convert("RGB").crop((120, 20, 340, 240))
    face.save(person / "Eileen_Collins_0001.jpg", quality=92)
    ImageOps.mirror(face).save(person / "Eileen_Collins_0002.jpg", quality=92)
    argv = [
        "liveness",
        "--faces",
        str(tmp_path / "faces"),
        "--warps",
        "3",
        "--beyond",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    families = {row["family"] for row in report["rows"]}
    assert families == {"flat", "flat >35", "static", "head turn", "same person"}
    assert report["shipped_threshold"] == 0.3
    assert report["identities"] == 1
    flat = [row for row in report["rows"] if row["family"] == "flat"]
    assert sum(row["pairs"] + row["no_face"] for row in flat) == 3
    for row in report["rows"]:
        assert set(row) >= {"similarity", "affine", "homography", "counts"}
        assert 0.0 <= row["homography"]["at_shipped"] <= 1.0
    assert len(report["keypoint_error"]) >= 1
    assert set(report["operating_points"]) == {"similarity", "affine", "homography"}

"""``bench-backends`` on a small pack: both backends timed, compared and measured."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.onnx_graphs import residual_cnn, spectrogram_like
from tools.compact.cli import main
from tools.compact.pack.writer import add_model

FILES = {"embedder": "fast/cnn.onnx", "mel": "fast/mel.onnx"}
KEYS = {"model", "tier", "task", "onnxruntime_ms", "ncnn_ms", "ratio", "cosine"}


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    (tmp_path / "fast").mkdir()
    onnx.save(residual_cnn(), tmp_path / "fast" / "cnn.onnx")
    onnx.save(spectrogram_like(), tmp_path / "fast" / "mel.onnx")
    for task, name in (("embedder", "cnn"), ("mel", "mel")):
        add_model(tmp_path, "fast", task, {"onnxruntime": [tmp_path / "fast" / f"{name}.onnx"]})
    return tmp_path


def test_bench_reports_both_backends_as_json(
    pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench-backends", "--pack", str(pack_dir), "--tier", "fast", "--runs", "3", "--json"]
    assert main([*args, "--input-shape", "mel=1,2000"]) == 0
    rows = {row["task"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"embedder", "mel"}
    for task, row in rows.items():
        assert set(row) >= KEYS, task
        assert (row["tier"], row["model"]) == ("fast", FILES[task])
        assert row["onnxruntime_ms"] > 0
        assert row["ncnn_ms"] > 0
        assert row["ratio"] == pytest.approx(row["ncnn_ms"] / row["onnxruntime_ms"], rel=0.1)
        assert row["cosine"] >= 0.9999
        assert row["converted"] is True
        assert len(row["ncnn_sweep"]) == 8
        assert row["ncnn_best"]["ratio_p10"] == min(v["ratio_p10"] for v in row["ncnn_sweep"])
        assert row["ncnn_best"]["cosine"] >= 0.999
        rss = row["rss_extra_mb"]
        assert set(rss) == {"onnxruntime", "ncnn"}
        assert all(0 <= value < 500 for value in rss.values())


def test_dynamic_input_without_a_size_is_reported(
    pack_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench-backends", "--pack", str(pack_dir), "--tier", "fast", "--task", "mel"]
    assert main([*args, "--runs", "1", "--no-rss"]) == 0
    out = capsys.readouterr().out
    assert "mel" in out
    assert "dynamic size: give its shape" in out

"""The model pack manifest: schema checks and sha256-verified reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from custom_components.compact_ai.engine.errors import ManifestError, ModelIntegrityError
from custom_components.compact_ai.engine.runtime.pack import ModelPack, parse_manifest
from tools.compact.pack.writer import add_model, read_manifest


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    (tmp_path / "balanced").mkdir()
    (tmp_path / "balanced" / "embedder.onnx").write_bytes(b"onnx bytes")
    (tmp_path / "balanced" / "embedder.param").write_bytes(b"param")
    (tmp_path / "balanced" / "embedder.bin").write_bytes(b"bin" * 100)
    add_model(
        tmp_path,
        "balanced",
        "face_embedder",
        {
            "onnxruntime": [tmp_path / "balanced" / "embedder.onnx"],
            "ncnn": [
                tmp_path / "balanced" / "embedder.param",
                tmp_path / "balanced" / "embedder.bin",
            ],
        },
        config={"input_size": 150},
        metrics={"ms_onnxruntime": 3.1},
        description="twice as fast",
    )
    return tmp_path


def test_written_pack_reads_back(pack_dir: Path) -> None:
    pack = ModelPack.load(pack_dir)
    entry = pack.model("balanced", "face_embedder")
    assert pack.tiers["balanced"].description == "twice as fast"
    assert entry.config == {"input_size": 150}
    assert entry.metrics == {"ms_onnxruntime": 3.1}
    assert [f.path for f in entry.files["ncnn"]] == [
        "balanced/embedder.param",
        "balanced/embedder.bin",
    ]
    assert pack.read_verified(entry.files["onnxruntime"][0]) == b"onnx bytes"
    pack.verify("balanced")


def test_manifest_is_written_deterministically(pack_dir: Path) -> None:
    text = (pack_dir / "manifest.json").read_text()
    add_model(
        pack_dir,
        "balanced",
        "face_embedder",
        read_files(pack_dir),
        config={"input_size": 150},
        metrics={"ms_onnxruntime": 3.1},
    )
    assert (pack_dir / "manifest.json").read_text() == text


def read_files(root: Path) -> dict[str, list[Path]]:
    entry = read_manifest(root)["tiers"]["balanced"]["models"]["face_embedder"]
    return {b: [root / f["path"] for f in files] for b, files in entry["files"].items()}


def test_tampered_file_is_refused(pack_dir: Path) -> None:
    pack = ModelPack.load(pack_dir)
    (pack_dir / "balanced" / "embedder.onnx").write_bytes(b"onnx bytez")
    with pytest.raises(ModelIntegrityError, match="sha256 does not match"):
        pack.verify("balanced")


def test_truncated_file_is_refused(pack_dir: Path) -> None:
    pack = ModelPack.load(pack_dir)
    (pack_dir / "balanced" / "embedder.bin").write_bytes(b"bin")
    with pytest.raises(ModelIntegrityError, match="truncated"):
        pack.verify("balanced")


def test_missing_file_is_refused(pack_dir: Path) -> None:
    pack = ModelPack.load(pack_dir)
    (pack_dir / "balanced" / "embedder.param").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        pack.verify("balanced")


def test_unreadable_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        ModelPack.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ManifestError, match=r"manifest\.json"):
        ModelPack.load(tmp_path)


def test_unknown_model(pack_dir: Path) -> None:
    with pytest.raises(ManifestError, match="no 'speech_mel' model in tier 'balanced'"):
        ModelPack.load(pack_dir).model("balanced", "speech_mel")


GOOD_FILE = {"path": "a.onnx", "sha256": "0" * 64, "size": 1}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"tiers": {}}, "missing 'schema_version'"),
        ({"schema_version": 2, "tiers": {}}, "schema_version 2"),
        ({"schema_version": 1, "tiers": []}, "expected dict"),
        ({"schema_version": 1, "tiers": {"fast": {}}}, "missing 'models'"),
        (
            {"schema_version": 1, "tiers": {"fast": {"models": {"x": {"files": {"ncnn": []}}}}}},
            "non-empty list",
        ),
        (
            {
                "schema_version": 1,
                "tiers": {
                    "fast": {"models": {"x": {"files": {"ncnn": [{**GOOD_FILE, "path": "../a"}]}}}}
                },
            },
            "inside the pack",
        ),
        (
            {
                "schema_version": 1,
                "tiers": {
                    "fast": {"models": {"x": {"files": {"ncnn": [{**GOOD_FILE, "sha256": "ab"}]}}}}
                },
            },
            "64 hex",
        ),
        (
            {
                "schema_version": 1,
                "tiers": {
                    "fast": {"models": {"x": {"files": {"ncnn": [{**GOOD_FILE, "size": "1"}]}}}}
                },
            },
            "expected int",
        ),
    ],
)
def test_schema_errors(manifest: object, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(json.loads(json.dumps(manifest)))

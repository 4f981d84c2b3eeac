"""The reference pack: every source model imported, listed and sha256-pinned."""

from __future__ import annotations

import multiprocessing
import stat
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import onnx
import pytest

from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.pack import reference
from tools.compact.pack.reference import (
    REFERENCE_TIER,
    build_reference_pack,
    code_fingerprint,
    load_pack,
)


def test_reference_pack_holds_every_task(tmp_path: Path) -> None:
    root = build_reference_pack(tmp_path / "pack")
    pack = ModelPack.load(root)
    models = pack.tiers[REFERENCE_TIER].models
    assert set(models) == {
        "face_detector",
        "face_detector_full",
        "face_proposer",
        "face_embedder",
        "speech_mel",
        "speech_embedding",
    }
    assert models["face_detector"].config["variant"] == "short"
    assert all(set(entry.files) == {"onnxruntime", "ncnn"} for entry in models.values())
    assert models["speech_mel"].config["inputs"][0]["shape"] == [1, -1]  # any length on ncnn
    assert models["face_proposer"].config["inputs"][0]["shape"] == [1, 3, -1, -1]  # any size
    pack.verify(REFERENCE_TIER)
    embedder = onnx.load_from_string(
        pack.read_verified(models["face_embedder"].files["onnxruntime"][0])
    )
    assert [i.name for i in embedder.graph.input] == ["chip"]

    # A second build with unchanged code reuses the pack; --force rebuilds identical bytes.
    manifest = (root / "manifest.json").read_bytes()
    mtime = (root / "manifest.json").stat().st_mtime_ns
    assert build_reference_pack(root) == root
    assert (root / "manifest.json").stat().st_mtime_ns == mtime
    build_reference_pack(root, force=True)
    assert (root / "manifest.json").read_bytes() == manifest


def test_load_pack_with_explicit_folder(tmp_path: Path) -> None:
    root = build_reference_pack(tmp_path / "pack")
    assert load_pack("reference", root).root == root
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # readable where the cache is shared


def test_a_failed_rebuild_keeps_the_pack_and_leaves_nothing_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build_reference_pack(tmp_path / "pack")
    manifest = (root / "manifest.json").read_bytes()

    def interrupted(folder: Path) -> None:
        (folder / "half.onnx").write_bytes(b"x")
        raise KeyboardInterrupt

    monkeypatch.setattr(reference, "_import_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_reference_pack(root, force=True)
    assert (root / "manifest.json").read_bytes() == manifest
    ModelPack.load(root).verify(REFERENCE_TIER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]


def test_every_importer_file_counts_in_the_fingerprint(tmp_path: Path) -> None:
    for path in (
        "pack/reference.py",
        "pack/sources.py",
        "ncnn/export.py",
        "importers/dlib_resnet.py",
        "importers/tflite/reader.py",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(f"# {path}\n")
    before = code_fingerprint(tmp_path)
    (tmp_path / "importers/tflite/reader.py").write_text("# changed\n")  # in a subpackage
    assert code_fingerprint(tmp_path) != before


def test_two_commands_building_at_once_both_get_the_whole_pack(tmp_path: Path) -> None:
    # Two toolkit commands started on a cold cache (e.g. distill beside commands-recordings):
    # the second once deleted the first one's files mid-build. Each now builds aside.
    root = tmp_path / "pack"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        first = pool.submit(build_reference_pack, root)
        deadline = time.monotonic() + 120
        while not any(tmp_path.rglob("*.onnx")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the second starts once the first is writing
        second = pool.submit(build_reference_pack, root)
        assert [first.result(), second.result()] == [root, root]
    ModelPack.load(root).verify(REFERENCE_TIER)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pack"]  # nothing left aside

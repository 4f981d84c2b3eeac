"""``add-proposer``: YuNet joins every tier of a pack; nothing else in the pack changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.compact_ai.engine.errors import ManifestError
from custom_components.compact_ai.engine.face.cascade import DetectionConfig
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.pack.proposer import PROPOSER, REPLACED, TIER_DETECTION, add_proposer
from tools.compact.pack.reference import build_reference_pack
from tools.compact.pack.writer import add_model


def small_pack(root: Path) -> dict[str, bytes]:
    """Three tiers with a near and a far detector (stand-in bytes); return every file."""
    files = {}
    for name in ("near", "far", "far_ncnn"):
        path = root / "shared" / f"{name}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode() * 100)
        files[f"shared/{name}.bin"] = path.read_bytes()
    for tier in TIER_DETECTION:
        near = {"onnxruntime": [root / "shared/near.bin"]}
        add_model(root, tier, "face_detector", near, config={"variant": "short"})
        if tier != "fast":
            far = {"onnxruntime": [root / "shared/far.bin"], "ncnn": [root / "shared/far_ncnn.bin"]}
            add_model(root, tier, REPLACED, far)
    return files


def test_yunet_joins_every_tier_and_the_far_detector_leaves(tmp_path: Path) -> None:
    files = small_pack(tmp_path)
    add_proposer(tmp_path, build_reference_pack(), {"fast": {"ms_per_frame": 12.5}})
    pack = ModelPack.load(tmp_path)
    for tier, detection in TIER_DETECTION.items():
        models = pack.tiers[tier].models
        assert set(models) == {"face_detector", PROPOSER}
        entry = models[PROPOSER]
        assert set(entry.files) == {"onnxruntime", "ncnn"}
        config = DetectionConfig.from_config(entry.config, tier)
        assert config.detect_pixels == detection["detect_pixels"]
        assert config.sharpen == detection["sharpen"]
        assert config.resample == detection.get("resample", "bilinear")
        pack.verify(tier)
    assert pack.tiers["fast"].models[PROPOSER].metrics == {"ms_per_frame": 12.5}
    assert (tmp_path / "shared/near.bin").read_bytes() == files["shared/near.bin"]  # untouched
    assert not (tmp_path / "shared/far.bin").exists()
    assert not (tmp_path / "shared/far_ncnn.bin").exists()
    listed = {
        f.path
        for t in pack.tiers.values()
        for e in t.models.values()
        for fs in e.files.values()
        for f in fs
    }
    assert {p.relative_to(tmp_path).as_posix() for p in (tmp_path / "shared").iterdir()} == listed


def test_a_resampler_the_engine_does_not_know_is_refused() -> None:
    for bad in ("lanczos", 1, None, []):
        with pytest.raises(ManifestError, match=r"balanced\.config\.resample: one of bilinear"):
            DetectionConfig.from_config({"resample": bad}, "balanced")
    assert DetectionConfig.from_config({}, "balanced").resample == "bilinear"

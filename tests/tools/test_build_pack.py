"""Tier selection rules, held-out metrics, and the shipped pack's integrity."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from custom_components.compact_ai.const import PACK_DIR, TIERS
from custom_components.compact_ai.engine.pack import ModelPack
from tools.compact.build_pack import (
    MAX_PACK_BYTES,
    Candidate,
    choose_tiers,
    identification,
    make_eval_set,
    pack_bytes,
    unlock_threshold,
    verification,
)
from tools.compact.errors import ToolError


def candidate(name: str, accuracy: float, ms: float, size: int = 100) -> Candidate:
    c = Candidate(name, 1.0, onnx.ModelProto())
    c.metrics = {"lfw_accuracy": accuracy, "ms_per_face_onnxruntime": ms}
    c.onnx_bytes = b"x" * size
    return c


def test_tier_rules() -> None:
    full = candidate("full", 0.990, 10.0)
    light = candidate("light", 0.987, 6.0)
    heavy = candidate("heavy", 0.978, 3.0)
    broken = candidate("broken", 0.950, 1.0)
    tiers = choose_tiers([full, light, heavy, broken])
    assert tiers == {"accurate": full, "balanced": light, "fast": heavy}


def test_budget_keeps_the_best_and_reuses_it_when_nothing_else_fits() -> None:
    big = candidate("big", 0.99, 10.0, size=900)
    small = candidate("small", 0.985, 5.0, size=300)
    tiny = candidate("tiny", 0.98, 3.0, size=200)
    assert choose_tiers([big, small, tiny], budget=1500) == {
        "accurate": big,
        "balanced": small,
        "fast": tiny,
    }
    assert choose_tiers([big, small, tiny], budget=1000) == {
        "accurate": big,
        "balanced": big,
        "fast": big,
    }
    assert choose_tiers([big, small, tiny], budget=600)["accurate"] is small
    with pytest.raises(ToolError, match="no face embedder fits"):
        choose_tiers([big], budget=10)


def two_people(rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    centres = rng.standard_normal((6, 128))
    embeddings = np.concatenate([c + 0.05 * rng.standard_normal((5, 128)) for c in centres])
    people = [f"p{i}" for i in range(6) for _ in range(5)]
    return embeddings, people


def test_held_out_metrics_on_separable_embeddings() -> None:
    rng = np.random.default_rng(0)
    embeddings, people = two_people(rng)
    eval_set = make_eval_set(np.zeros((30, 1)), people, seed=0)
    assert make_eval_set(np.zeros((30, 1)), people, seed=0).pairs == eval_set.pairs
    metrics = verification(embeddings, eval_set)
    assert metrics["lfw_accuracy"] == 1.0
    assert identification(embeddings, people, threshold=1.0) == {"tar": 1.0, "far": 0.0}
    assert identification(embeddings, people, threshold=100.0)["far"] == 1.0
    limit = unlock_threshold(embeddings, people, start=100.0)
    assert identification(embeddings, people, limit)["far"] == 0.0


@pytest.mark.skipif(not (PACK_DIR / "manifest.json").exists(), reason="no pack built yet")
def test_shipped_pack_is_complete_verified_and_small() -> None:
    pack = ModelPack.load(PACK_DIR)
    assert set(TIERS) <= set(pack.tiers)
    for tier in TIERS:
        models = pack.tiers[tier].models
        assert {"face_detector", "face_embedder", "speech_mel", "speech_embedding"} <= set(models)
        assert ("face_detector_full" in models) == (tier != "fast")  # fast: near detector only
        assert all(set(entry.files) == {"onnxruntime", "ncnn"} for entry in models.values())
        embedder = models["face_embedder"]
        assert 0 < embedder.config["unlock_threshold"] < embedder.config["threshold"]
        assert embedder.metrics["lfw_accuracy"] > 0.95
        pack.verify(tier)  # every file matches its sha256
    assert pack_bytes(PACK_DIR) <= MAX_PACK_BYTES

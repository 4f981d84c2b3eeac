"""Every model of the shipped pack gives the same answers on onnxruntime and on ncnn."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from custom_components.compact_ai.const import PACK_DIR
from custom_components.compact_ai.engine.face.detector import letterbox
from custom_components.compact_ai.engine.face.proposals import PROPOSER_INPUT, propose, to_blob
from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
from custom_components.compact_ai.engine.runtime.backend import load_model
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")
PACK = ModelPack.load(PACK_DIR)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(source_path(name)).convert("RGB"))


def test_detectors_agree() -> None:
    """fp32 on onnxruntime against fp16 weights on ncnn: the raw outputs match."""
    entry = PACK.model("accurate", "face_detector")
    size = int(entry.config["input_size"])
    tensor, _ = letterbox(photo("t1.jpg"), size)
    feed = {"input": tensor}
    ort = load_model(PACK, entry, "onnxruntime").run(feed)
    ncnn = load_model(PACK, entry, "ncnn").run(feed)
    assert all(cosine(a, b) >= 0.9999 for a, b in zip(ort, ncnn, strict=True))


def test_proposers_agree() -> None:
    """YuNet (fp32 on both) on a group photo: the raw outputs and the faces it proposes."""
    entry = PACK.model("balanced", "face_proposer")
    group = photo("t1.jpg")  # 1280x886: padded to 1280x896 on both
    found = {}
    for backend in ("onnxruntime", "ncnn"):
        model = load_model(PACK, entry, backend)
        raw = model.run({PROPOSER_INPUT: to_blob(group)})
        found[backend] = (raw, propose(model.run, model.output_names, group))
    (ort_raw, ort_faces), (ncnn_raw, ncnn_faces) = found.values()
    assert all(cosine(a, b) >= 0.9999 for a, b in zip(ort_raw, ncnn_raw, strict=True))
    assert len(ort_faces) == len(ncnn_faces) == 6
    for a, b in zip(ort_faces, ncnn_faces, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=0.01)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.01)


def test_speech_models_agree() -> None:
    rng = np.random.default_rng(0)
    clip = {"serving_default_input:0": (rng.standard_normal((1, 16000)) * 3000).astype(np.float32)}
    mel_entry = PACK.model("balanced", "speech_mel")
    (ort_mel,) = load_model(PACK, mel_entry, "onnxruntime").run(clip)
    (ncnn_mel,) = load_model(PACK, mel_entry, "ncnn").run(clip)
    assert cosine(ort_mel, ncnn_mel) >= 0.9999
    windows = {"serving_default_input_1:0": (ort_mel[:, 0, :76, :, None] / 10 + 2)}
    emb_entry = PACK.model("balanced", "speech_embedding")
    (ort_emb,) = load_model(PACK, emb_entry, "onnxruntime").run(windows)
    (ncnn_emb,) = load_model(PACK, emb_entry, "ncnn").run(windows)
    assert cosine(ort_emb, ncnn_emb) >= 0.999


@pytest.mark.parametrize("tier", ["accurate", "balanced", "fast"])
def test_face_decisions_agree(tier: str) -> None:
    """int8 (onnxruntime) against 8-bit codebook or fp16 weights (ncnn): same decisions."""
    astronaut = photo("astronaut.png")
    mirrored = astronaut[:, ::-1].copy()
    hanks = photo("Tom_Hanks_54745.png")
    results = {}
    for backend in ("onnxruntime", "ncnn"):
        recognizer = FaceRecognizer.load(PACK, tier, backend)
        embeddings = [
            recognizer.pipeline.faces(image)[0].embedding for image in (astronaut, mirrored, hanks)
        ]
        same = float(np.linalg.norm(embeddings[0] - embeddings[1]))
        different = float(np.linalg.norm(embeddings[0] - embeddings[2]))
        results[backend] = (same, different, recognizer.threshold)
        assert same < recognizer.unlock_threshold < recognizer.threshold < different
    (ort_same, ort_diff, _), (ncnn_same, ncnn_diff, _) = results.values()
    # int8 against ncnn's weights: distances within 0.1, far from the thresholds the decisions use
    assert abs(ort_same - ncnn_same) < 0.1 and abs(ort_diff - ncnn_diff) < 0.1

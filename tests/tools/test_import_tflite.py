"""The TFLite importer on the shipped models: graph structure, LiteRT equivalence, bad files."""

from __future__ import annotations

import wave
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.tools.tflite_reference import assert_matches, run_litert
from tools.compact.errors import ToolError
from tools.compact.importers.tflite import import_tflite, ops as tflite_ops
from tools.compact.pack.sources import source_path
from tools.compact.paths import EVALDATA_DIR

SHORT = "face_detection_short_range.tflite"
FULL = "face_detection_full_range.tflite"
SPARSE = "face_detection_full_range_sparse.tflite"
MEL = "melspectrogram.tflite"
EMBEDDING = "embedding_model.tflite"
FACE_MODELS = (SHORT, FULL, SPARSE)
ALL_MODELS = (*FACE_MODELS, MEL, EMBEDDING)

# name -> (inputs, outputs) as (name, shape); None marks a dynamic dimension
EXPECTED_IO: dict[str, tuple[list[tuple[str, list[int | None]]], ...]] = {
    SHORT: (
        [("input", [1, 128, 128, 3])],
        [("regressors", [1, 896, 16]), ("classificators", [1, 896, 1])],
    ),
    FULL: (
        [("input", [1, 192, 192, 3])],
        [
            ("reshaped_regressor_face_4", [1, 2304, 16]),
            ("reshaped_classifier_face_4", [1, 2304, 1]),
        ],
    ),
    SPARSE: (
        [("input_1", [1, 192, 192, 3])],
        [("Identity", [1, 2304, 16]), ("Identity_1", [1, 2304, 1])],
    ),
    MEL: (
        [("serving_default_input:0", [None, None])],
        [("PartitionedCall:0", [None, 1, None, 32])],
    ),
    EMBEDDING: (
        [("serving_default_input_1:0", [None, 76, 32, 1])],
        [("StatefulPartitionedCall:0", [None, 1, 1, 96])],
    ),
}
# upper bounds; the layout tracking reaches these (a naive conversion had 80 for SHORT)
MAX_TRANSPOSES = {SHORT: 5, FULL: 2, SPARSE: 2, MEL: 1, EMBEDDING: 0}


# --------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def models() -> dict[str, onnx.ModelProto]:
    return {name: import_tflite(source_path(name)) for name in ALL_MODELS}


# --------------------------------------------------------------------------- inputs


def _face_input(image: Image.Image, size: int) -> np.ndarray:
    """Resize a photo like MediaPipe and scale it to [-1, 1]."""
    pixels = np.asarray(
        image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32
    )
    return (pixels / 127.5 - 1.0)[None]


def _photos() -> list[Image.Image]:
    photos = [Image.open(source_path("astronaut.png"))]
    lfw = sorted((EVALDATA_DIR / "faces").glob("*/*.jpg"))[:1]
    photos += [Image.open(path) for path in lfw]
    return photos


def _synthetic_speech(seconds: float = 1.6, rate: int = 16000) -> np.ndarray:
    """Return a voiced, syllable-shaped harmonic signal with noise bursts (int16 range)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 120 + 25 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formant = 500 + 300 * np.sin(2 * np.pi * 2.1 * t)
    voiced = sum(
        np.sin(k * phase) * np.exp(-(((k * pitch - formant) / 250) ** 2)) / k for k in range(1, 40)
    )
    syllables = 0.5 * (1 - np.cos(2 * np.pi * 3.2 * t))
    noise = rng.normal(0, 0.15, t.size) * (np.sin(2 * np.pi * 0.9 * t) > 0.7)
    signal = voiced * syllables + noise
    return (signal / np.abs(signal).max() * 12000).astype(np.float32)


def _speech_clips() -> list[np.ndarray]:
    clips = [_synthetic_speech()]
    for path in sorted((EVALDATA_DIR / "speech_other").glob("*.wav"))[:1]:
        with wave.open(str(path)) as handle:
            frames = handle.readframes(handle.getnframes())
        clips.append(np.frombuffer(frames, "<i2").astype(np.float32))
    return clips


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", ALL_MODELS)
def test_full_check_passes(models: dict[str, onnx.ModelProto], name: str) -> None:
    onnx.checker.check_model(models[name], full_check=True)
    assert models[name].opset_import[0].version == 17


@pytest.mark.parametrize("name", ALL_MODELS)
def test_io_names_and_shapes_are_kept(models: dict[str, onnx.ModelProto], name: str) -> None:
    def described(values: Any) -> list[tuple[str, list[int | None]]]:
        return [
            (v.name, [d.dim_value if d.HasField("dim_value") else None for d in _dims(v)])
            for v in values
        ]

    graph = models[name].graph
    assert (described(graph.input), described(graph.output)) == EXPECTED_IO[name]


def _dims(value: Any) -> Any:
    return value.type.tensor_type.shape.dim


@pytest.mark.parametrize("name", ALL_MODELS)
def test_layout_needs_few_transposes(models: dict[str, onnx.ModelProto], name: str) -> None:
    counts = Counter(node.op_type for node in models[name].graph.node)
    assert counts["Transpose"] <= MAX_TRANSPOSES[name]


# --------------------------------------------------------------------------- equivalence


@pytest.mark.slow
@pytest.mark.parametrize("name", FACE_MODELS)
def test_face_detectors_match_litert(models: dict[str, onnx.ModelProto], name: str) -> None:
    size = 128 if name == SHORT else 192
    inputs = [_face_input(photo, size) for photo in _photos()]
    inputs.append(np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32))
    for data in inputs:
        assert_matches(source_path(name), models[name], data)


@pytest.mark.slow
def test_melspectrogram_matches_litert(models: dict[str, onnx.ModelProto]) -> None:
    rng = np.random.default_rng(1)
    inputs = [clip[None] for clip in _speech_clips()]
    inputs.append(rng.uniform(-32768, 32767, (2, 1760)).astype(np.float32))  # dynamic batch
    inputs.append(rng.normal(0, 3000, (1, 12345)).astype(np.float32))  # odd length
    for data in inputs:
        assert_matches(source_path(MEL), models[MEL], data)


@pytest.mark.slow
def test_embedding_model_matches_litert(models: dict[str, onnx.ModelProto]) -> None:
    windows = []
    for clip in _speech_clips():
        mel = run_litert(source_path(MEL), clip[None])["PartitionedCall:0"][0, 0]
        scaled = mel / 10 + 2  # openWakeWord's scaling before the embedding model
        windows += [scaled[start : start + 76] for start in range(0, len(scaled) - 75, 24)]
    real = np.stack(windows)[..., None].astype(np.float32)
    random = np.random.default_rng(2).normal(0, 2, (3, 76, 32, 1)).astype(np.float32)
    for data in (real, random, random[:1]):
        assert_matches(source_path(EMBEDDING), models[EMBEDDING], data)


# --------------------------------------------------------------------------- errors


def test_unsupported_op_names_op_file_and_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(tflite_ops.CONVERTERS, "LEAKY_RELU")
    with pytest.raises(ToolError, match=r"embedding_model\.tflite.*LEAKY_RELU.*operator index 2"):
        import_tflite(source_path(EMBEDDING))


def test_garbage_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tflite"
    path.write_bytes(np.random.default_rng(8).bytes(5000))
    with pytest.raises(ToolError, match=r"garbage\.tflite"):
        import_tflite(path)


@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.999])
def test_truncated_file_names_the_file(tmp_path: Path, fraction: float) -> None:
    raw = source_path(SHORT).read_bytes()
    path = tmp_path / "truncated.tflite"
    path.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(ToolError, match=r"truncated\.tflite"):
        import_tflite(path)

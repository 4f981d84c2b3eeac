"""Speech embeddings match openWakeWord's computation on the original TFLite models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custom_components.compact_ai.engine.voice.speech import (
    EMBEDDING_SIZE,
    MIN_SAMPLES,
    SpeechEmbedder,
    mel_frame_count,
    window_count,
)
from tools.compact.evaluate.commands import load_speech_embedder
from tools.compact.pack.sources import source_path


@pytest.fixture(scope="module")
def embedder() -> SpeechEmbedder:
    return load_speech_embedder("reference")


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Voiced-like audio: a gliding harmonic tone with syllable envelopes, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    x = voiced * envelope * 6000 + rng.normal(0, 200, len(t))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def litert_reference(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """openWakeWord's way, spelled out: whole-clip mel, /10 + 2, 76-frame windows every 8."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter

    def run(path: Path, x: np.ndarray) -> np.ndarray:
        model = interpreter(model_path=str(path))
        model.resize_tensor_input(0, list(x.shape), strict=True)
        model.allocate_tensors()
        model.set_tensor(model.get_input_details()[0]["index"], x)
        model.invoke()
        return np.asarray(model.get_tensor(model.get_output_details()[0]["index"]))

    mel = run(source_path("melspectrogram.tflite"), samples[None].astype(np.float32))
    spec = np.squeeze(mel) / 10 + 2
    windows = [spec[i : i + 76] for i in range(0, spec.shape[0], 8) if i + 76 <= spec.shape[0]]
    batch = np.array(windows, dtype=np.float32)[..., None]
    embeddings = run(source_path("embedding_model.tflite"), batch).reshape(len(windows), 96)
    return spec, embeddings


@pytest.mark.parametrize(("seconds", "seed"), [(1.0, 0), (2.0, 1), (3.3701, 2)])
def test_embeddings_match_the_tflite_reference(
    embedder: SpeechEmbedder, seconds: float, seed: int
) -> None:
    samples = speechlike(seconds, seed)
    ours = embedder.embed(samples)
    mel, reference = litert_reference(samples)
    np.testing.assert_allclose(embedder.melspectrograms(samples[None])[0], mel, atol=1e-3)
    assert mel.shape == (mel_frame_count(len(samples)), 32)
    assert ours.shape == reference.shape == (window_count(len(samples)), EMBEDDING_SIZE)
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)
    assert np.abs(ours).max() > 1.0  # real features, not an all-zero pass


@pytest.mark.parametrize("samples", [16000, 16031, 16032, 12511, 12512, 600])
def test_frame_count_formula_matches_the_model(embedder: SpeechEmbedder, samples: int) -> None:
    mel = embedder.melspectrograms(np.ones((1, samples), np.int16))
    assert mel.shape == (1, mel_frame_count(samples), 32)


def test_batches_equal_single_clips(embedder: SpeechEmbedder) -> None:
    clips = np.stack([speechlike(2.0, seed) for seed in (4, 5, 6)])
    batch = embedder.embeddings(clips)
    for clip, row in zip(clips, batch, strict=True):
        np.testing.assert_allclose(embedder.embed(clip), row, atol=1e-4)


def test_window_counts() -> None:
    assert window_count(32000) == 16
    assert window_count(MIN_SAMPLES) == 1
    assert window_count(MIN_SAMPLES - 1) == 0


def test_too_short_or_wrong_dtype_is_refused(embedder: SpeechEmbedder) -> None:
    with pytest.raises(ValueError, match="at least"):
        embedder.embed(np.zeros(MIN_SAMPLES - 1, np.int16))
    with pytest.raises(ValueError, match="int16"):
        embedder.melspectrograms(np.zeros((1, 16000), np.float32))

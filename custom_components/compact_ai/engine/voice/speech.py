"""Speech features: 16 kHz int16 audio -> openWakeWord's melspectrogram -> speech embeddings.

The same framing as openWakeWord's ``AudioFeatures`` for a whole clip: the melspectrogram
model turns ``n`` samples into ``(n - 512) // 160 + 1`` frames of 32 bins (a 512-sample
analysis window every 160 samples; ``n / 160 - 3`` for multiples of 160), scaled as
``mel / 10 + 2``; the embedding model (Google's speech_embedding) sees windows of 76 frames
every 8 frames (80 ms), windows that run past the end are dropped, and each gives a
96-dimensional embedding.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ..runtime.backend import InferenceModel

MEL_INPUT: Final = "serving_default_input:0"
EMBEDDING_INPUT: Final = "serving_default_input_1:0"
SAMPLES_PER_FRAME: Final = 160  # 10 ms hop of the melspectrogram
ANALYSIS_SAMPLES: Final = 512  # the melspectrogram's analysis window (no padding)
MEL_BINS: Final = 32
WINDOW_FRAMES: Final = 76
HOP_FRAMES: Final = 8
EMBEDDING_SIZE: Final = 96
BATCH: Final = 64  # windows per embedding run: bounds the runtime's activation memory
MIN_SAMPLES: Final = ANALYSIS_SAMPLES + (WINDOW_FRAMES - 1) * SAMPLES_PER_FRAME


def mel_frame_count(samples: int) -> int:
    """Return the number of melspectrogram frames for ``samples`` samples."""
    if samples < ANALYSIS_SAMPLES:
        return 0
    return (samples - ANALYSIS_SAMPLES) // SAMPLES_PER_FRAME + 1


def window_count(samples: int) -> int:
    """Return the number of embeddings for a clip of ``samples`` samples."""
    frames = mel_frame_count(samples)
    return 0 if frames < WINDOW_FRAMES else (frames - WINDOW_FRAMES) // HOP_FRAMES + 1


def scale_mel(mel: np.ndarray) -> np.ndarray:
    """Apply openWakeWord's fixed transform to raw melspectrogram output."""
    return (mel / 10.0 + 2.0).astype(np.float32)


class SpeechEmbedder:
    """Run the melspectrogram and embedding models on clips of equal length."""

    def __init__(self, mel_model: InferenceModel, embedding_model: InferenceModel) -> None:
        """Use the loaded melspectrogram and embedding models."""
        self._mel = mel_model
        self._embedding = embedding_model

    def melspectrograms(self, clips: np.ndarray) -> np.ndarray:
        """Return scaled melspectrograms (N, frames, 32) of int16 ``clips`` (N, samples)."""
        if clips.ndim != 2 or clips.dtype != np.int16:
            raise ValueError("clips must be an int16 array of shape (N, samples)")
        (mel,) = self._mel.run({MEL_INPUT: clips.astype(np.float32)})[:1]
        frames = mel_frame_count(clips.shape[1])
        return scale_mel(np.asarray(mel).reshape(len(clips), frames, MEL_BINS))

    def embeddings(self, clips: np.ndarray) -> np.ndarray:
        """Return the embeddings (N, windows, 96) of int16 ``clips`` (N, samples)."""
        if clips.shape[-1] < MIN_SAMPLES:
            raise ValueError(f"clips need at least {MIN_SAMPLES} samples, not {clips.shape[-1]}")
        mel = self.melspectrograms(clips)
        count = window_count(clips.shape[1])
        starts = np.arange(count) * HOP_FRAMES
        frames = starts[:, None] + np.arange(WINDOW_FRAMES)[None, :]
        windows = mel[:, frames].reshape(len(clips) * count, WINDOW_FRAMES, MEL_BINS, 1)
        out = [
            np.asarray(
                self._embedding.run({EMBEDDING_INPUT: np.ascontiguousarray(batch)})[0],
                dtype=np.float32,
            ).reshape(len(batch), EMBEDDING_SIZE)
            for batch in np.array_split(windows, -(-len(windows) // BATCH))
        ]
        return np.concatenate(out).reshape(len(clips), count, EMBEDDING_SIZE)

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """Return the embeddings (windows, 96) of one int16 clip."""
        return np.asarray(self.embeddings(samples[np.newaxis])[0], dtype=np.float32)

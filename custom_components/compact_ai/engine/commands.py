"""Voice commands: a small numpy classifier over speech embeddings, and its command set.

A command set is a folder with ``manifest.json`` (phrases, threshold, feature settings,
training summary) and a weights file (``.npz``) pinned by size and sha256; the weights are
only parsed after they match. The head is an MLP over pooled embeddings of a fixed window
centred on the speech: softmax over the phrases plus an explicit ``_unknown_`` class. A
phrase wins only if its probability reaches the calibrated threshold; a clip without speech
is ``_silence_`` before any model runs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from .audio import frame_levels, speech_segment
from .errors import ManifestError, ModelIntegrityError
from .pack import ModelFile, load_json, read_verified
from .speech import SpeechEmbedder

SCHEMA_VERSION: Final = 1
MANIFEST_NAME: Final = "manifest.json"
UNKNOWN: Final = "_unknown_"
SILENCE: Final = "_silence_"
WINDOW_SAMPLES: Final = 32_000  # 2 s around the speech: 16 embeddings
SEGMENTS: Final = 4  # time segments pooled separately, so word order still counts
TARGET_PEAK_DBFS: Final = -12.0
MAX_GAIN_DB: Final = 40.0
_WEIGHT_NAMES: Final = ("mean", "scale", "w0", "b0", "w1", "b1")


def command_window(samples: np.ndarray, segment: tuple[int, int]) -> np.ndarray:
    """Return :data:`WINDOW_SAMPLES` int16 samples centred on ``segment``, level-normalised.

    Missing context is zero-padded; the gain brings the loudest 10 ms of the segment to
    :data:`TARGET_PEAK_DBFS` (at most :data:`MAX_GAIN_DB` louder).
    """
    start, end = segment
    begin = (start + end) // 2 - WINDOW_SAMPLES // 2
    window = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    source = samples[max(0, begin) : begin + WINDOW_SAMPLES]
    offset = max(0, -begin)
    window[offset : offset + len(source)] = source
    peak = float(np.max(frame_levels(samples[max(0, start) : max(0, end)]), initial=-100.0))
    gain = 10 ** (min(MAX_GAIN_DB, TARGET_PEAK_DBFS - peak) / 20)
    return np.asarray(np.clip(np.rint(window * gain), -32768, 32767), dtype=np.int16)


def pool(embeddings: np.ndarray) -> np.ndarray:
    """Turn embeddings (N, windows, 96) into head inputs (N, 96 * (2 + SEGMENTS)).

    Mean and max over the whole window, then the mean of each of :data:`SEGMENTS` equal
    stretches of time.
    """
    parts = [embeddings.mean(axis=1), embeddings.max(axis=1)]
    parts += [chunk.mean(axis=1) for chunk in np.array_split(embeddings, SEGMENTS, axis=1)]
    return np.asarray(np.concatenate(parts, axis=1), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class CommandHead:
    """Standardisation, one ReLU hidden layer, softmax; weights as float32 arrays."""

    mean: np.ndarray
    scale: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    w1: np.ndarray
    b1: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Return logits (N, classes) for pooled features (N, D)."""
        hidden = np.maximum((features - self.mean) / self.scale @ self.w0 + self.b0, 0.0)
        return np.asarray(hidden @ self.w1 + self.b1, dtype=np.float32)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities (N, classes)."""
        logits = self.logits(features)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)

    def to_bytes(self) -> bytes:
        """Serialise to ``.npz`` bytes (no pickle)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in _WEIGHT_NAMES})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CommandHead:
        """Parse ``.npz`` bytes written by :meth:`to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                values = {name: arrays[name].astype(np.float32) for name in _WEIGHT_NAMES}
        except (OSError, ValueError, KeyError) as err:
            raise ModelIntegrityError(f"command weights cannot be read: {err}") from err
        head = cls(**values)
        if head.w0.shape[0] != head.mean.shape[-1] or head.w1.shape[0] != head.w0.shape[1]:
            raise ModelIntegrityError("command weights have inconsistent shapes")
        return head


@dataclass(frozen=True, slots=True)
class CommandSet:
    """The phrases a head recognizes, its threshold and the head itself."""

    name: str
    phrases: tuple[str, ...]
    threshold: float
    head: CommandHead
    manifest: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        """Return the head's classes: the phrases, then ``_unknown_``."""
        return (*self.phrases, UNKNOWN)

    @classmethod
    def load(cls, folder: Path) -> CommandSet:
        """Read ``folder/manifest.json`` and its weights after checking their sha256."""
        path = folder / MANIFEST_NAME
        raw = load_json(path)
        try:
            version, weights = raw["schema_version"], raw["weights"]
            phrases, threshold = tuple(str(p) for p in raw["phrases"]), float(raw["threshold"])
            file_name, sha256, size = str(weights["path"]), str(weights["sha256"]), weights["size"]
        except (KeyError, TypeError, ValueError) as err:
            raise ManifestError(f"{path}: missing or invalid {err}") from err
        if version != SCHEMA_VERSION:
            raise ManifestError(f"{path}: schema_version {version} is not {SCHEMA_VERSION}")
        if not phrases or Path(file_name).name != file_name:
            raise ManifestError(f"{path}: needs phrases and a weights file inside the folder")
        data = read_verified(folder, ModelFile(file_name, sha256, size))
        head = CommandHead.from_bytes(data)
        if head.w1.shape[1] != len(phrases) + 1:
            raise ModelIntegrityError(f"{file_name}: the head does not match the phrase list")
        name = str(raw.get("name", folder.name))
        return cls(name, phrases, threshold, head, raw)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What was heard: a phrase, ``_unknown_`` or ``_silence_``, with the class scores."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    segment: tuple[int, int] | None  # samples of the speech that was classified

    @property
    def is_command(self) -> bool:
        """Return whether a phrase of the set was recognized."""
        return self.label not in (UNKNOWN, SILENCE)


def decide(command_set: CommandSet, probabilities: np.ndarray) -> tuple[str, float]:
    """Return the label and its probability for one row of class probabilities."""
    best = int(np.argmax(probabilities[:-1]))
    confidence = float(probabilities[best])
    if confidence >= command_set.threshold:
        return command_set.phrases[best], confidence
    return UNKNOWN, float(1.0 - confidence)


class CommandRecognizer:
    """Audio (16 kHz mono int16) -> the command it holds, if any."""

    def __init__(self, embedder: SpeechEmbedder, command_set: CommandSet) -> None:
        """Use loaded speech models and a command set."""
        self.embedder = embedder
        self.command_set = command_set

    def recognize(self, samples: np.ndarray) -> CommandResult:
        """Classify the strongest speech in ``samples``; no speech gives ``_silence_``."""
        segment = speech_segment(samples)
        if segment is None:
            return CommandResult(SILENCE, 1.0, {}, None)
        window = command_window(samples, segment)
        features = pool(self.embedder.embeddings(window[np.newaxis]))
        probabilities = self.command_set.head.probabilities(features)[0]
        label, confidence = decide(self.command_set, probabilities)
        scores = {
            name: float(p) for name, p in zip(self.command_set.labels, probabilities, strict=True)
        }
        return CommandResult(label, confidence, scores, segment)

"""Voice commands: a small numpy classifier over speech embeddings, and its command set.

A command set is a folder with ``manifest.json`` (phrases, threshold, feature settings,
training summary) and a weights file (``.npz``) pinned by size and sha256; the weights are
only parsed after they match. The head is an MLP over pooled embeddings of a fixed window
centred on the speech: softmax over the phrases plus an explicit ``_unknown_`` class,
averaged over the members of a small ensemble. A phrase wins only if its probability reaches
the calibrated threshold; a clip without speech is ``_silence_`` before any model runs.

Schema 2 pools :data:`SEGMENTS` time segments and may hold several members; schema 1 sets
(4 segments, one member) still load: the segment count follows from the head's input size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..errors import ManifestError, ModelIntegrityError
from ..runtime.pack import ModelFile, load_json, read_verified
from .audio import frame_levels, speech_segment
from .speech import EMBEDDING_SIZE, SpeechEmbedder

SCHEMA_VERSION: Final = 2
READABLE_SCHEMAS: Final = frozenset({1, 2})
MANIFEST_NAME: Final = "manifest.json"
UNKNOWN: Final = "_unknown_"
SILENCE: Final = "_silence_"
WINDOW_SAMPLES: Final = 32_000  # 2 s around the speech: 16 embeddings
SEGMENTS: Final = 8  # time segments (250 ms) pooled separately, so word order still counts
TARGET_PEAK_DBFS: Final = -12.0
MAX_GAIN_DB: Final = 40.0
_WEIGHT_NAMES: Final = ("mean", "scale", "w0", "b0", "w1", "b1")
_MEMBER_NAMES: Final = frozenset({"w0", "b0", "w1", "b1"})


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


def pool(embeddings: np.ndarray, segments: int = SEGMENTS) -> np.ndarray:
    """Turn embeddings (N, windows, 96) into head inputs (N, 96 * (2 + segments)).

    Mean and max over the whole window, then the mean of each of ``segments`` equal
    stretches of time.
    """
    parts = [embeddings.mean(axis=1), embeddings.max(axis=1)]
    parts += [chunk.mean(axis=1) for chunk in np.array_split(embeddings, segments, axis=1)]
    return np.asarray(np.concatenate(parts, axis=1), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class CommandHead:
    """Standardisation, then members of one ReLU hidden layer + softmax, averaged.

    Weights are float32 arrays with a leading member axis: ``w0`` (members, D, hidden),
    ``b0`` (members, hidden), ``w1`` (members, hidden, classes), ``b1`` (members, classes).
    """

    mean: np.ndarray
    scale: np.ndarray
    w0: np.ndarray
    b0: np.ndarray
    w1: np.ndarray
    b1: np.ndarray

    @property
    def members(self) -> int:
        """Return the number of ensemble members."""
        return int(self.w0.shape[0])

    @property
    def inputs(self) -> int:
        """Return the size of the pooled features the head takes."""
        return int(self.mean.shape[-1])

    @property
    def hidden(self) -> int:
        """Return the hidden layer size of each member."""
        return int(self.w0.shape[-1])

    @property
    def classes(self) -> int:
        """Return the number of classes (phrases + unknown)."""
        return int(self.w1.shape[-1])

    @property
    def segments(self) -> int:
        """Return the number of pooled time segments the input size implies."""
        return self.inputs // EMBEDDING_SIZE - 2

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Return logits (members, N, classes) for pooled features (N, D)."""
        x = (features - self.mean) / self.scale
        hidden = np.maximum(x[np.newaxis] @ self.w0 + self.b0[:, np.newaxis], 0.0)
        return np.asarray(hidden @ self.w1 + self.b1[:, np.newaxis], dtype=np.float32)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities (N, classes): the members' softmax, averaged."""
        logits = self.logits(features)
        exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return np.asarray((exp / exp.sum(axis=-1, keepdims=True)).mean(axis=0), dtype=np.float32)

    def to_bytes(self) -> bytes:
        """Serialise to ``.npz`` bytes (no pickle); member weights as float16, half the size."""
        arrays = {
            name: getattr(self, name).astype(np.float16 if name in _MEMBER_NAMES else np.float32)
            for name in _WEIGHT_NAMES
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CommandHead:
        """Parse ``.npz`` bytes written by :meth:`to_bytes`."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                values = {name: arrays[name].astype(np.float32) for name in _WEIGHT_NAMES}
        except (OSError, ValueError, KeyError) as err:
            raise ModelIntegrityError(f"command weights cannot be read: {err}") from err
        if values["w0"].ndim == 2:  # schema 1: one member
            values = {k: v[np.newaxis] if k in _MEMBER_NAMES else v for k, v in values.items()}
        head = cls(**values)
        shapes_agree = (
            head.w0.shape == (head.members, head.inputs, head.hidden)
            and head.b0.shape == (head.members, head.hidden)
            and head.w1.shape == (head.members, head.hidden, head.classes)
            and head.b1.shape == (head.members, head.classes)
            and head.scale.shape == head.mean.shape
            and head.inputs % EMBEDDING_SIZE == 0
            and head.segments >= 1
        )
        if not shapes_agree:
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
        if version not in READABLE_SCHEMAS:
            raise ManifestError(
                f"{path}: schema_version {version} is not in {sorted(READABLE_SCHEMAS)}"
            )
        if not phrases or Path(file_name).name != file_name:
            raise ManifestError(f"{path}: needs phrases and a weights file inside the folder")
        data = read_verified(folder, ModelFile(file_name, sha256, size))
        head = CommandHead.from_bytes(data)
        if head.classes != len(phrases) + 1:
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
        features = pool(
            self.embedder.embeddings(window[np.newaxis]), self.command_set.head.segments
        )
        probabilities = self.command_set.head.probabilities(features)[0]
        label, confidence = decide(self.command_set, probabilities)
        scores = {
            name: float(p) for name, p in zip(self.command_set.labels, probabilities, strict=True)
        }
        return CommandResult(label, confidence, scores, segment)

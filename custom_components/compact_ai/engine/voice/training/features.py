"""Features: synthesize, augment and embed every planned clip through the engine's own path.

Clips go voice activity -> 2 s window -> speech embeddings -> pooling, exactly as recognition
does, so training sees what recognition will see. The user's recordings are added with
augmented copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EngineError, TrainingError
from ..audio import read_wav, speech_segment
from ..commands import UNKNOWN, command_window, pool
from ..speech import SpeechEmbedder
from ..tts import NoiseSource, Voice, synthesize
from .augment import augment, nonspeech
from .plan import Plan, Progress
from .texts import plan_items, voice_requests

AUGMENTED_COPIES = 7  # of each of the user's recordings (and of each spoken clip)
RECORDING = "recording"  # the family of the user's recordings and their copies


@dataclass(frozen=True, slots=True)
class SpokenClip:
    """One clean clip (16 kHz int16) synthesized outside the engine, its label and voice family.

    Home Assistant's TTS entities speak these; the family (``<entity>:<voice>``, plus
    ``:<speaker>`` for a speaker of a multi-speaker voice: another person's voice) lets
    calibration hold one voice of each entity out, like a local synthesizer's voices.
    """

    samples: np.ndarray
    label: int
    family: str


@dataclass
class Dataset:
    """Pooled features with their label index and the voice family that spoke them."""

    features: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def arrays(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (features, labels), optionally only the rows of a boolean ``mask``."""
        x, y = np.stack(self.features), np.asarray(self.labels)
        return (x, y) if mask is None else (x[mask], y[mask])


def featurize(
    embedder: SpeechEmbedder, clips: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Return pooled features of the clips where speech was found, and which those were."""
    windows, kept = [], []
    for index, clip in enumerate(clips):
        segment = speech_segment(clip)
        if segment is not None:
            windows.append(command_window(clip, segment))
            kept.append(index)
    if not windows:
        return np.empty((0, 0), np.float32), np.asarray(kept, dtype=np.int64)
    return pool(embedder.embeddings(np.stack(windows))), np.asarray(kept, dtype=np.int64)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def build_dataset(
    plan: Plan, embedder: SpeechEmbedder, voices: Sequence[Voice], noise: NoiseSource,
    recordings: Sequence[tuple[Path, int]] = (), progress: Progress | None = None,
    spoken: Sequence[SpokenClip] = (),
) -> Dataset:  # fmt: skip
    """Synthesize, augment and embed every planned clip (in chunks, to bound memory).

    ``progress`` is called with the fraction done after every chunk; it may raise to stop.
    ``spoken`` clips (and the recordings) are added with augmented copies.
    """
    rng = np.random.default_rng(plan.seed)
    data = Dataset()
    unknown = len(plan.phrases)
    requests = voice_requests(rng, plan_items(plan, rng), voices) if voices else []
    total = len(requests) + len(spoken)  # progress counts clips, synthesized or spoken
    for done, chunk in enumerate(_chunks(requests, plan.chunk)):
        if progress is not None:
            progress(done * plan.chunk / total)
        speech = synthesize([r for r, _ in chunk], workers=plan.threads, kokoro=plan.kokoro)
        clips = [augment(rng, clean, noise) for clean in speech]
        features, kept = featurize(embedder, clips)
        for row, index in zip(features, kept, strict=True):
            data.features.append(row)
            data.labels.append(chunk[index][1])
            data.families.append(chunk[index][0].voice.family)
    sounds = [nonspeech(rng, noise) for _ in range(plan.negatives // 10)]
    for sound_chunk in _chunks(sounds, 256):
        features, _ = featurize(embedder, sound_chunk)
        data.features += list(features)
        data.labels += [unknown] * len(features)
        data.families += ["sound"] * len(features)
    add_recordings(recordings, embedder, noise, rng, data)
    for start in range(0, len(spoken), plan.chunk):
        if progress is not None:
            progress((len(requests) + start) / total)
        chunk = spoken[start : start + plan.chunk]
        for family in sorted({clip.family for clip in chunk}):
            mine = [(clip.samples, clip.label) for clip in chunk if clip.family == family]
            add_clips(mine, embedder, noise, rng, data, family)
    return data


def recording_files(plan: Plan) -> list[tuple[Path, int]]:
    """Return ``recordings/<phrase or _unknown_>/*.wav`` with label indices; check the names."""
    if plan.recordings is None:
        return []
    labels = {phrase: index for index, phrase in enumerate(plan.phrases)}
    labels[UNKNOWN] = len(plan.phrases)
    files = []
    for folder in sorted(p for p in plan.recordings.iterdir() if p.is_dir()):
        if folder.name not in labels:
            raise TrainingError(
                f"{folder}: {folder.name!r} is not a phrase of the set (or _unknown_)"
            )
        files += [(path, labels[folder.name]) for path in sorted(folder.glob("*.wav"))]
    return files


def add_recordings(
    files: Sequence[tuple[Path, int]], embedder: SpeechEmbedder, noise: NoiseSource,
    rng: np.random.Generator, data: Dataset,
) -> None:  # fmt: skip
    """Add each recording and augmented copies of it."""
    clips = []
    for path, label in files:
        try:
            clips.append((read_wav(path).samples, label))
        except EngineError as err:
            raise TrainingError(f"{path}: {err}") from err
    add_clips(clips, embedder, noise, rng, data)


def add_clips(
    clips: Sequence[tuple[np.ndarray, int]], embedder: SpeechEmbedder, noise: NoiseSource,
    rng: np.random.Generator, data: Dataset, family: str = RECORDING,
) -> None:  # fmt: skip
    """Add each real or spoken clip (int16 samples, label) and augmented copies of it."""
    for clean, label in clips:
        copies = [clean] + [augment(rng, clean, noise) for _ in range(AUGMENTED_COPIES)]
        features, _ = featurize(embedder, copies)
        data.features += list(features)
        data.labels += [label] * len(features)
        data.families += [family] * len(features)

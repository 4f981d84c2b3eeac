"""``commands``: how well a command set recognizes real recordings.

``--audio DIR`` holds ``DIR/<label>/*.wav``: labels that are phrases of the set count as
themselves, ``_silence_`` and ``_background_noise_`` folders (and every file of ``--silence
DIR``) are cut into 1 s pieces that must be rejected, and any other label is ``_unknown_``.
Reported: accuracy over all clips (phrases + unknown + silence), per-class recall, unknown
and silence rejection (anything but a phrase), the confusion matrix and ms per utterance.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.errors import EngineError
from custom_components.compact_ai.engine.runtime.backend import load_model
from custom_components.compact_ai.engine.voice.audio import TARGET_RATE, read_wav
from custom_components.compact_ai.engine.voice.commands import (
    SILENCE,
    UNKNOWN,
    CommandRecognizer,
    CommandSet,
)
from custom_components.compact_ai.engine.voice.speech import SpeechEmbedder
from tools.compact.errors import ToolError
from tools.compact.paths import PACK_DIR

SILENCE_FOLDERS = frozenset({SILENCE, "_background_noise_"})
MEL_TASK = "speech_mel"
EMBEDDING_TASK = "speech_embedding"


def load_speech_embedder(
    tier: str = "reference",
    pack_dir: Path | None = None,
    backend: str = "onnxruntime",
    threads: int = 1,
) -> SpeechEmbedder:
    """Return the tier's melspectrogram + embedding models as a :class:`SpeechEmbedder`."""
    from tools.compact.pack.reference import load_pack

    try:
        pack = load_pack(tier, pack_dir)
        return SpeechEmbedder(
            load_model(pack, pack.model(tier, MEL_TASK), backend, threads=threads),
            load_model(pack, pack.model(tier, EMBEDDING_TASK), backend, threads=threads),
        )
    except EngineError as err:
        raise ToolError(str(err)) from err


def command_set_dir(name: str) -> Path:
    """Return the folder of a command set given by folder path or shipped name."""
    path = Path(name)
    if (path / "manifest.json").exists():
        return path
    shipped = PACK_DIR / "commands" / name
    if (shipped / "manifest.json").exists():
        return shipped
    raise ToolError(f"no command set {name!r} (neither a folder nor under {PACK_DIR / 'commands'})")


def load_command_set(name: str) -> CommandSet:
    """Load a command set by name or folder, turning engine errors into tool errors."""
    try:
        return CommandSet.load(command_set_dir(name))
    except EngineError as err:
        raise ToolError(str(err)) from err


@dataclass(frozen=True)
class Clip:
    """One evaluation clip: where it came from, its true label and its samples."""

    source: str
    truth: str
    samples: np.ndarray


def _seconds(samples: np.ndarray, seconds: float = 1.0) -> list[np.ndarray]:
    step = int(seconds * TARGET_RATE)
    return [samples[i : i + step] for i in range(0, len(samples) - step + 1, step)]


def silence_clips(folder: Path) -> list[Clip]:
    """Cut every WAV of ``folder`` into 1 s ``_silence_`` clips."""
    clips = []
    for path in sorted(folder.glob("*.wav")):
        for index, piece in enumerate(_seconds(read_wav(path, max_seconds=600).samples)):
            clips.append(Clip(f"{path.name}@{index}s", SILENCE, piece))
    return clips


def labelled_clips(folder: Path, phrases: tuple[str, ...]) -> list[Clip]:
    """Read ``folder/<label>/*.wav`` with the label each clip counts as."""
    clips: list[Clip] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if sub.name in SILENCE_FOLDERS:
            clips += silence_clips(sub)
            continue
        truth = sub.name if sub.name in phrases else UNKNOWN
        for path in sorted(sub.glob("*.wav")):
            clips.append(Clip(f"{sub.name}/{path.name}", truth, read_wav(path).samples))
    return clips


def _rate(values: list[bool]) -> float | None:
    return float(np.mean(values)) if values else None


def evaluate(recognizer: CommandRecognizer, clips: list[Clip]) -> dict[str, Any]:
    """Recognize every clip and return the metrics (see the module docstring)."""
    phrases = recognizer.command_set.phrases
    predicted: list[str] = []
    start = time.perf_counter()
    for clip in clips:
        predicted.append(recognizer.recognize(clip.samples).label)
    elapsed = time.perf_counter() - start
    truths = [clip.truth for clip in clips]
    confusion: dict[str, Counter[str]] = {}
    for truth, guess in zip(truths, predicted, strict=True):
        confusion.setdefault(truth, Counter())[guess] += 1
    rejected = {
        kind: _rate([g not in phrases for t, g in zip(truths, predicted, strict=True) if t == kind])
        for kind in (UNKNOWN, SILENCE)
    }
    classes = [*phrases, UNKNOWN, SILENCE]
    return {
        "accuracy": _rate([t == g for t, g in zip(truths, predicted, strict=True)]),
        "command_accuracy": _rate(
            [t == g for t, g in zip(truths, predicted, strict=True) if t in phrases]
        ),
        "per_class": {
            label: _rate([g == label for t, g in zip(truths, predicted, strict=True) if t == label])
            for label in classes
            if label in confusion
        },
        "unknown_rejection": rejected[UNKNOWN],
        "silence_rejection": rejected[SILENCE],
        "ms_per_utterance": 1000 * elapsed / max(len(clips), 1),
        "clips": len(clips),
        "confusion": {truth: dict(confusion[truth]) for truth in classes if truth in confusion},
    }


def _percent(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def report_lines(result: dict[str, Any]) -> list[str]:
    """Return the report ``commands`` prints: rates, per-class recall and the confusion."""
    lines = [
        f"clips               {result['clips']}",
        f"accuracy            {_percent(result['accuracy'])}  (phrases + unknown + silence)",
        f"command accuracy    {_percent(result['command_accuracy'])}",
        f"unknown rejection   {_percent(result['unknown_rejection'])}",
        f"silence rejection   {_percent(result['silence_rejection'])}",
        f"ms per utterance    {result['ms_per_utterance']:.1f}",
        "per-class recall",
    ]
    lines += [f"  {label:<18}{_percent(value)}" for label, value in result["per_class"].items()]
    lines.append("confusion (truth: predicted counts)")
    for truth, row in result["confusion"].items():
        cells = ", ".join(f"{guess} {count}" for guess, count in sorted(row.items()))
        lines.append(f"  {truth:<18}{cells}")
    return lines


@dataclass(frozen=True)
class Recordings:
    """The command set and speech models to load, and the recordings to evaluate them on."""

    command_set: str = "default"  # shipped name or folder
    tier: str = "reference"
    pack: Path | None = None
    backend: str = "onnxruntime"
    audio: tuple[Path, ...] = ()  # folders of <label>/*.wav
    silence: tuple[Path, ...] = ()  # folders of noise WAVs, cut into 1 s pieces
    speech: tuple[Path, ...] = ()  # folders of other speech WAVs (unknown)
    threshold: float | None = None  # overrides the command set's


def recognizer_and_clips(recordings: Recordings) -> tuple[CommandRecognizer, list[Clip]]:
    """Load the recognizer and the labelled clips ``recordings`` names."""
    command_set = load_command_set(recordings.command_set)
    if recordings.threshold is not None:
        command_set = replace(command_set, threshold=recordings.threshold)
    embedder = load_speech_embedder(recordings.tier, recordings.pack, recordings.backend, threads=1)
    clips: list[Clip] = []
    for folder in recordings.audio:
        clips += labelled_clips(folder, command_set.phrases)
    for folder in recordings.speech:
        paths = sorted(folder.glob("*.wav"))
        clips += [Clip(path.name, UNKNOWN, read_wav(path).samples) for path in paths]
    for folder in recordings.silence:
        clips += silence_clips(folder)
    if not clips:
        raise ToolError("no WAV clips found")
    return CommandRecognizer(embedder, command_set), clips

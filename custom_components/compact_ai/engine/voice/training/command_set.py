"""The command set: train, calibrate, retrain on everything, and write it sha256-pinned."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import TrainingError
from ...runtime.pack import sha256_of
from ..commands import MANIFEST_NAME, SCHEMA_VERSION, UNKNOWN, WINDOW_SAMPLES, CommandHead
from ..speech import SpeechEmbedder
from ..tts import NoiseSource, Voice, available_voices
from .features import Dataset, SpokenClip, build_dataset, recording_files
from .head import DEFAULT_THRESHOLD, calibrate, rates, train_head, validation_families
from .plan import Plan, Progress

WEIGHTS_NAME = "head.npz"


def write_command_set(
    folder: Path, phrases: Sequence[str], head: CommandHead, threshold: float,
    training: dict[str, Any],
) -> Path:  # fmt: skip
    """Write the weights and ``manifest.json`` (sha256-pinned) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = head.to_bytes()
    (folder / WEIGHTS_NAME).write_bytes(data)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": folder.name,
        "phrases": list(phrases),
        "labels": [*phrases, UNKNOWN],
        "threshold": threshold,
        "features": {
            "speech_models": ["speech_mel", "speech_embedding"],
            "window_samples": WINDOW_SAMPLES,
            "segments": head.segments,
            "head": f"{head.members} x mlp {head.inputs}-{head.hidden}-{head.classes}",
        },
        "weights": {"path": WEIGHTS_NAME, "sha256": sha256_of(data), "size": len(data)},
        "training": training,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return folder


def select_voices(hold_out: Sequence[str], kokoro: Path | None = None) -> list[Voice]:
    """Return the available voices minus those named (by id or family) in ``hold_out``."""
    voices = [
        v for v in available_voices(kokoro) if v.id not in hold_out and v.family not in hold_out
    ]
    if not voices:
        raise TrainingError("no TTS voice available: install espeak-ng, flite or festival")
    return voices


def fit_head(plan: Plan, data: Dataset) -> tuple[CommandHead, float, dict[str, float], set[str]]:
    """Return the head trained on all of ``data``, its threshold, validation rates and families.

    The threshold comes from a probe head trained without one voice family per engine.
    """
    classes = len(plan.phrases) + 1
    held = validation_families(data.families, plan.seed)
    in_validation = np.isin(np.asarray(data.families), sorted(held))
    x_fit, y_fit = data.arrays(~in_validation)
    x_val, y_val = data.arrays(in_validation)
    options = {
        "hidden": plan.hidden, "epochs": plan.epochs, "seed": plan.seed, "members": plan.members,
    }  # fmt: skip
    probe = train_head(x_fit, y_fit, classes, **options)
    threshold = calibrate(probe, x_val, y_val, plan.accept) if len(y_val) else DEFAULT_THRESHOLD
    validation = rates(probe, x_val, y_val, threshold) if len(y_val) else {}
    x_all, y_all = data.arrays()
    return train_head(x_all, y_all, classes, **options), threshold, validation, held


def train_command_set(
    plan: Plan, out: Path, embedder: SpeechEmbedder, progress: Progress | None = None,
    notes: Mapping[str, Any] | None = None, spoken: Sequence[SpokenClip] = (),
) -> dict[str, Any]:  # fmt: skip
    """Train, calibrate, retrain on everything and write the command set; return its summary.

    ``progress`` gets the fraction of synthesis done (0..1); it may raise to cancel. ``notes``
    (such as the command line) are added to the manifest's training summary. ``spoken`` are
    clips synthesized elsewhere (Home Assistant's TTS entities), learnt with augmented copies.
    """
    started = time.perf_counter()
    recordings = recording_files(plan)
    if not plan.use_tts and not recordings and not spoken:
        raise TrainingError(
            "without a synthesizer, training needs recordings or Home Assistant TTS voices"
        )
    voices = select_voices(plan.hold_out, plan.kokoro) if plan.use_tts else []
    noise_files = sorted(plan.noise.glob("*.wav")) if plan.noise else []
    noise = NoiseSource(noise_files)
    data = build_dataset(plan, embedder, voices, noise, recordings, progress, spoken)
    head, threshold, validation, held = fit_head(plan, data)
    y_all, classes = np.asarray(data.labels), head.classes
    training = {
        "seed": plan.seed,
        "members": plan.members,
        "accept": plan.accept,
        "clips": len(y_all),
        "clips_per_label": {
            label: int(count)
            for label, count in zip(
                [*plan.phrases, UNKNOWN], np.bincount(y_all, minlength=classes), strict=True
            )
        },
        "voices": len(voices),
        "voice_families": sorted({v.family for v in voices}),
        "held_out_voices": sorted(plan.hold_out),
        "validation_families": sorted(held),
        "validation": validation,
        "noise_files": {path.name: sha256_of(path.read_bytes()) for path in noise_files},
        "recordings": len(recordings),
        "spoken_clips": len(spoken),
        "spoken_families": sorted({clip.family for clip in spoken}),
        "seconds": round(time.perf_counter() - started, 1),
        **(notes or {}),
    }
    write_command_set(out, plan.phrases, head, threshold, training)
    return training

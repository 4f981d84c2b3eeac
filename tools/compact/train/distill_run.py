"""``distill``: prune a teacher embedder, distill it on unlabeled photos, measure all three.

A student may also see fewer pixels than its teacher (``input_size``, :mod:`.resolution`): its
chips are the teacher's faces with the same jitters, cut at that size as the engine cuts them.
The pruned student, the training chips and the teacher's targets are cached (under
``cache_dir()/distill``) by what made them, so a second run with other training settings starts
training at once, and an interrupted run resumes from its last epoch. The measurement is
``build-pack``'s: held-out pairs and the door's distance on the dev photos, onnxruntime fp32.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tools.compact.errors import ToolError
from tools.compact.paths import cache_dir
from tools.compact.train.distill import (
    Recipe,
    Teacher,
    TrainingSet,
    distill,
    normalized,
    require_jax,
    training_set,
)

METADATA_KEY = "compact_ai_distillation"  # the recipe, written into the student's ONNX


@dataclass
class Row:
    """One model's measurements on the dev photos."""

    name: str
    lfw_accuracy: float
    unlock_threshold: float
    door_tar: float
    flops: int
    ms_per_face: float = 0.0


def _folder() -> Path:
    folder = cache_dir() / "distill"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def cached_student(
    builder: Any, teacher_sha256: str, fraction: float, seed: int, progress: bool
) -> onnx.ModelProto:
    """Return the teacher pruned to ``fraction`` of its FLOPs (least-squares reconstructed)."""
    from tools.compact.compress.prune import prune

    if fraction >= 1.0:
        return onnx.load(builder.reference)
    photos = [str(p) for p in builder.photos]
    key = _digest(teacher_sha256, fraction, seed, photos)
    path = _folder() / f"student-{key}.onnx"
    if path.is_file():
        return onnx.load(path)
    model = prune(
        onnx.load(builder.reference), builder.feeds(), fraction, seed=seed, progress=progress
    ).model
    onnx.save(model, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    return model


def cached_training_set(
    photos: list[Path], builder: Any, recipe: Recipe, progress: bool
) -> TrainingSet:
    """Chips of ``photos`` in the student's framing (cached by the files' names, sizes, times)."""
    from tools.compact.compress.calibration import FaceChipper

    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in photos]
    key = _digest(stats, builder.source.alignment, recipe.per_image, recipe.jitter)
    path = _folder() / f"chips-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            return TrainingSet(data["chips"], **meta)
    chipper = FaceChipper(alignment=builder.source.alignment)
    found = training_set(photos, chipper, recipe.per_image, recipe.jitter, progress)
    meta = {k: v for k, v in asdict(found).items() if k != "chips"}
    np.savez(str(path) + ".tmp.npz", chips=found.chips, meta=np.array(json.dumps(meta)))
    os.replace(str(path) + ".tmp.npz", path)
    return found


def teacher_targets(teacher: bytes, teacher_sha256: str, found: TrainingSet) -> np.ndarray:
    """Return the teacher's normalized embeddings of every chip (cached by chips and teacher)."""
    from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
    from tools.compact.pack.heldout import embed

    key = _digest(teacher_sha256, found.data_sha256, found.chips.shape)
    path = _folder() / f"targets-{key}.npy"
    if path.is_file():
        kept: np.ndarray = np.load(path)
        return kept
    runner = OnnxruntimeModel(teacher, name="teacher", threads=os.cpu_count() or 1)
    targets = normalized(embed(runner, found.chips.astype(np.float32))).astype(np.float32)
    np.save(str(path) + ".tmp.npy", targets)
    os.replace(str(path) + ".tmp.npy", path)
    return targets


def cached_smaller(
    student: onnx.ModelProto, size: int, chips: np.ndarray, targets: np.ndarray, seed: int
) -> onnx.ModelProto:
    """Return ``student`` at ``size`` px with its last layer solved on ``chips``' targets.

    Cached by everything that made it: the student, the size, the seed, the chips, the targets.
    """
    from tools.compact.train import resolution

    made_of = [hashlib.sha256(a.tobytes()).hexdigest() for a in (chips, targets)]
    solver = (resolution.FIT_SAMPLES, resolution.HELD_OUT, resolution.STRENGTHS)
    key = _digest(
        hashlib.sha256(student.SerializeToString()).hexdigest(), size, seed, made_of, solver
    )
    path = _folder() / f"student-{key}-{size}px.onnx"
    if path.is_file():
        return onnx.load(path)
    model = resolution.at_input_size(student, size, chips, targets, seed)
    onnx.save(model, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)
    return model


def measure(models: dict[str, tuple[Any, onnx.ModelProto]]) -> list[Row]:
    """Accuracy, door distance and TAR, FLOPs and ms per face (1 thread) of each model.

    Each model comes with the builder whose chips it takes (its framing and size).
    """
    from tools.compact.compress.measure import flops
    from tools.compact.pack.heldout import interleaved_ms

    rows: list[Row] = []
    runs: dict[str, Callable[[], object]] = {}
    for name, (builder, model) in models.items():
        verify, _, runner = builder.measure_onnx(model)
        door = builder.door({"onnxruntime": runner}, verify["threshold_far_0_1"])
        chip = {"chip": builder.timing_chip}
        count = flops(model, chip)
        rows.append(
            Row(name, verify["lfw_accuracy"], door["unlock_threshold"], door["door_tar"], count)
        )
        runs[name] = partial(runner.run, chip)
    times = interleaved_ms(runs)
    for row in rows:
        row.ms_per_face = round(times[row.name], 2)
    return rows


def run(
    source: Any,
    fraction: float,
    train: list[Path],
    evaldata: Path,
    recipe: Recipe,
    out: Path,
    progress: bool,
    input_size: int | None = None,
) -> tuple[list[Row], dict[str, Any]]:
    """Prune, distill and measure; write the student to ``out``; return rows and recipe.

    ``input_size`` (px) gives the student smaller chips than its teacher's.
    """
    from tools.compact.pack.candidates import Builder
    from tools.compact.pack.embedders import at_size

    require_jax()  # before minutes of chips
    small = at_size(source, input_size or source.alignment.size)  # refuses an unknown size
    builder = Builder(evaldata, recipe.seed, progress, source)
    teacher = builder.reference.read_bytes()
    teacher_sha256 = hashlib.sha256(teacher).hexdigest()
    student = cached_student(builder, teacher_sha256, fraction, recipe.seed, progress)
    found = cached_training_set(train, builder, recipe, progress)
    targets = teacher_targets(teacher, teacher_sha256, found)
    # Before training: the pruned teacher, and at a smaller size that with its last layer solved.
    chips, own, before = found.chips, builder, {}
    if fraction < 1.0:
        before["pruned"] = (builder, student)
    if small is not source:
        own = Builder(evaldata, recipe.seed, progress, small)
        # The same faces and jitters, cut at the smaller size as the engine cuts them.
        chips = cached_training_set(train, own, recipe, progress).chips
        if len(chips) != len(found.chips):
            raise ToolError(
                "the smaller chips do not match the teacher's: delete the distill cache"
            )
        student = cached_smaller(student, small.alignment.size, chips, targets, recipe.seed)
        before["solved"] = (own, student)
    checkpoint = _folder() / f"checkpoint-{_digest(out.resolve().as_posix())}.npz"
    teacher_model = onnx.load_from_string(teacher)
    guide = Teacher(teacher_model, found.chips) if recipe.mix else None
    result = distill(student, chips, targets, recipe, checkpoint, say=_say, teacher=guide)
    about = {
        "source": source.name,
        "input_size": small.alignment.size,
        "flops_target": fraction,
        "recipe": asdict(recipe),
        "images": found.images,
        "chips": len(found.chips),
        "unreadable": len(found.unreadable),
        "without_face": len(found.without_face),
        "data_sha256": found.data_sha256,
        "teacher_sha256": teacher_sha256,
        "losses": [round(v, 5) for v in result.losses],
    }
    model = result.model
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(about, sort_keys=True)})
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out) + ".tmp")
    os.replace(str(out) + ".tmp", out)
    rows = measure({"teacher": (builder, teacher_model), **before, "distilled": (own, model)})
    return rows, about


def _say(line: str) -> None:
    """Report training at once (stdout is the final table's)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()

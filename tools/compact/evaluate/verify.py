"""``verify``: face verification accuracy of a tier on an LFW-style pairs file.

Each image's primary face (see :func:`primary_face`) is embedded with the engine's own
:class:`FacePipeline`, exactly as Home Assistant scans a camera frame (decoded at the tier's
scale, detected, aligned, embedded); a pair is called "same person" when the Euclidean
distance is at most the model's threshold. An image without a face makes its pairs
"different" (so a same-person pair counts as an error). Reported: accuracy at the fixed
threshold, best-threshold accuracy by 10-fold cross-validation, FAR and FRR at the fixed
threshold, the threshold at which FAR is at most 0.1 %, images without a face (``no_face``)
and milliseconds per image by stage (``ms_decode``, ``ms_detect``, ``ms_align``,
``ms_embed``; ``ms_per_frame`` their sum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.errors import EngineError, ImageDecodeError
from custom_components.compact_ai.engine.face.detector import VARIANTS, Detection
from custom_components.compact_ai.engine.face.pipeline import STAGES, FacePipeline, embedder_config
from tools.compact.errors import ToolError
from tools.compact.evaluate.pairs import Pair

FOLDS = 10
TARGET_FAR = 0.001
CASCADE = "cascade"  # the tier's own detection (YuNet proposals where the tier has them)
PRIMARY_SHARE = 0.8  # a primary face is at least this share of the widest face's width


@dataclass
class Timer:
    """Accumulated ms per pipeline stage and how many images and faces went through."""

    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    images: int = 0
    faces: int = 0

    def add(self, ms: dict[str, float], faces: int) -> None:
        """Count one image and the ms its stages took."""
        for stage, value in ms.items():
            self.ms[stage] += value
        self.images += 1
        self.faces += faces

    def report(self) -> dict[str, float]:
        """Return ms per image for every stage, and their sum (``ms_per_frame``)."""
        per_image = {f"ms_{stage}": value / max(self.images, 1) for stage, value in self.ms.items()}
        return {**per_image, "ms_per_frame": sum(per_image.values())}


@dataclass(frozen=True)
class Embedded:
    """The primary face of one image: its embedding (None: no face) and face count."""

    embedding: np.ndarray | None
    faces: int


def primary_face(detections: list[Detection], width: int, height: int) -> Detection:
    """Return the face an image is about.

    Among faces at least :data:`PRIMARY_SHARE` as wide as the widest, the one closest to the
    image centre. LFW centres the labelled face, and a smaller face in the background never
    wins; in a door-camera frame (``doorcam.py`` pastes a whole LFW photo anywhere in it) a
    background person nearer the frame's centre must not either: at half the widest, 6 % of
    96 px door frames were judged on the wrong face, at 0.8 3 % (no LFW crop changes).
    """
    widest = max(d.box[2] - d.box[0] for d in detections)
    large = [d for d in detections if d.box[2] - d.box[0] >= PRIMARY_SHARE * widest]
    return min(
        large,
        key=lambda d: (d.box[0] + d.box[2] - width) ** 2 + (d.box[1] + d.box[3] - height) ** 2,
    )


def embed_primary(pipeline: FacePipeline, path: Path, timer: Timer) -> Embedded:
    """Embed the primary face of the image at ``path``, timing each stage."""
    try:
        found = pipeline.scan(
            path.read_bytes(), choose=lambda faces, w, h: [primary_face(faces, w, h)]
        )
    except (OSError, ImageDecodeError) as err:
        raise ToolError(f"{path}: {err}") from err
    timer.add(found.ms, len(found.faces))
    if not found.faces:
        return Embedded(None, 0)
    return Embedded(found.faces[0].embedding, len(found.detections))


def door_distance(tier: str, pack_dir: Path | None) -> float:
    """Return the tier's unlock distance (the door's), as its build calibrated it."""
    from custom_components.compact_ai.engine.face.recognizer import EMBEDDER_TASK, door_distances
    from tools.compact.pack.reference import load_pack

    try:
        config = load_pack(tier, pack_dir).model(tier, EMBEDDER_TASK).config
        if "unlock_threshold" not in config:
            raise ToolError(f"tier {tier!r} has no calibrated unlock distance")
        _, unlock = door_distances(config, f"tiers.{tier}.models.{EMBEDDER_TASK}")
    except EngineError as err:
        raise ToolError(str(err)) from err
    return unlock


def load_face_pipeline(
    tier: str, pack_dir: Path | None, backend: str, detector: str = CASCADE
) -> tuple[FacePipeline, float]:
    """Return the tier's face pipeline (1 thread) and the embedder's same-person threshold.

    ``detector`` ``cascade`` is the tier's own detection; ``short`` or ``full`` is that
    BlazeFace model alone on the whole frame (with the tier's embedder).
    """
    from custom_components.compact_ai.engine.face.recognizer import (
        EMBEDDER_TASK,
        door_distances,
        load_pipeline,
    )
    from custom_components.compact_ai.engine.runtime.backend import load_model
    from tools.compact.pack.reference import load_pack

    try:
        pack = load_pack(tier, pack_dir)
        if tier not in pack.tiers:
            raise ToolError(f"the pack at {pack.root} has no tier {tier!r}")
        embedder = pack.model(tier, EMBEDDER_TASK)
        threshold, _ = door_distances(embedder.config, f"tiers.{tier}.models.{EMBEDDER_TASK}")
        if detector == CASCADE:
            pipeline = load_pipeline(pack, tier, backend)
        else:
            entries = [
                entry
                for task, entry in sorted(pack.tiers[tier].models.items())
                if task.startswith("face_detector") and entry.config.get("variant") == detector
            ]
            if not entries:
                raise ToolError(f"tier {tier!r} has no {detector} range face detector")
            pipeline = FacePipeline(
                load_model(pack, entries[0], backend, threads=1),
                load_model(pack, embedder, backend, threads=1),
                VARIANTS[detector],
                embedding=embedder_config(embedder.config),
            )
    except (EngineError, ValueError) as err:
        raise ToolError(str(err)) from err
    return pipeline, threshold


def _accuracy(distances: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((distances <= threshold) == same))


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """Return the threshold maximizing accuracy (midpoints between sorted distances)."""
    finite = np.unique(distances[np.isfinite(distances)])
    if finite.size == 0:
        return 0.0
    candidates = np.concatenate([[finite[0] - 1e-6], (finite[:-1] + finite[1:]) / 2])
    scores = [_accuracy(distances, same, float(t)) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def cross_validated_accuracy(distances: np.ndarray, same: np.ndarray, folds: int = FOLDS) -> float:
    """Return the mean accuracy over ``folds`` folds, each at the best threshold of the others.

    Pair ``i`` belongs to fold ``i mod folds``.
    """
    fold_of = np.arange(len(distances)) % folds
    scores = []
    for fold in range(min(folds, len(distances))):
        test = fold_of == fold
        threshold = best_threshold(distances[~test], same[~test])
        scores.append(_accuracy(distances[test], same[test], threshold))
    return float(np.mean(scores))


def threshold_at_far(distances: np.ndarray, same: np.ndarray, target: float = TARGET_FAR) -> float:
    """Return the largest threshold whose false-accept rate is at most ``target``."""
    impostor = np.sort(distances[~same])
    allowed = int(np.floor(target * impostor.size))  # impostor pairs that may be accepted
    if impostor.size == 0:
        return float("inf")
    return float(np.nextafter(impostor[allowed], -np.inf))


def evaluate_pairs(
    pipeline: FacePipeline, pairs: list[Pair], images: Path, threshold: float
) -> dict[str, Any]:
    """Embed every image once and score every pair; return the report."""
    timer = Timer()
    cache: dict[Path, Embedded] = {}
    distances = np.empty(len(pairs))

    def lookup(path: Path) -> Embedded:
        if path not in cache:
            cache[path] = embed_primary(pipeline, path, timer)
        return cache[path]

    for index, pair in enumerate(pairs):
        first, second = (lookup(path) for path in pair.paths(images))
        if first.embedding is None or second.embedding is None:
            distances[index] = np.inf
        else:
            distances[index] = float(np.linalg.norm(first.embedding - second.embedding))
    same = np.array([pair.same for pair in pairs])
    accepted = distances <= threshold
    return {
        "pairs": len(pairs),
        "same_pairs": int(same.sum()),
        "different_pairs": int((~same).sum()),
        "images": len(cache),
        "no_face": sum(item.embedding is None for item in cache.values()),
        "threshold": threshold,
        "accuracy": _accuracy(distances, same, threshold),
        "best_accuracy": cross_validated_accuracy(distances, same),
        "best_threshold": best_threshold(distances, same),
        "far": float(accepted[~same].mean()) if (~same).any() else 0.0,
        "frr": float((~accepted[same]).mean()) if same.any() else 0.0,
        "threshold_at_far_0_1": threshold_at_far(distances, same),
        **timer.report(),
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """Return the report as the lines ``verify`` prints."""
    return [
        f"{report['pairs']} pairs ({report['same_pairs']} same), {report['images']} images, "
        f"{report['no_face']} without a face",
        f"accuracy {report['accuracy']:.2%} at threshold {report['threshold']:.3f} "
        f"(FAR {report['far']:.2%}, FRR {report['frr']:.2%})",
        f"best-threshold accuracy (10-fold) {report['best_accuracy']:.2%}; "
        f"best threshold {report['best_threshold']:.3f}; "
        f"FAR <= 0.1 % below {report['threshold_at_far_0_1']:.3f}",
        f"ms per image: decode {report['ms_decode']:.1f}, detect {report['ms_detect']:.1f}, "
        f"align {report['ms_align']:.1f}, embed {report['ms_embed']:.1f}, "
        f"total {report['ms_per_frame']:.1f}",
    ]

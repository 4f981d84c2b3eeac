"""``liveness``: the door's liveness check against flat photos and moving heads.

Runs the shipped face pipeline (the detectors Home Assistant runs for ``--tier``) on:

- **flat photo**: each identity's first photo, printed (pasted on a frame-sized sheet) and
  seen under ``--warps`` random poses of the perspective model (tilt/pan 0-35 degrees about a
  random in-plane axis, roll +-15, scale 0.8-1.25, shift), each frame with sensor noise and a
  JPEG round trip (q70-90); each pose is paired with the frontal reference frame.
- **flat >35**: ``--beyond`` more poses tilted 35-50 degrees, past the family: a measure whose
  refusal holds only inside the family is no defence against an attacker who tilts further.
- **static**: the reference frame again with independent noise, JPEG and a sub-pixel shift.
- **head turn (synthetic)**: the reference frame's head turned 5-30 degrees by a depth model
  (ellipsoid head with a nose): true 3-D parallax, conservative depths, no expression change.
- **same person (LFW)**: pairs of different photos of the identity. A proxy for a moving head:
  the pose differs (parallax), but so do expression, session and the photo's own alignment.

Every pair is scored by the three residuals of :mod:`~custom_components.compact_ai.engine.
liveness` (per inter-ocular distance). Reported: refusal of flat and static pairs, acceptance of
head motion, at the shipped threshold and across a sweep; per measure, the lowest threshold that
refuses every flat (0-35) and static pair and what it accepts there; and the detector's keypoint
error against the true homography (how noisy the keypoints are).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from custom_components.compact_ai.engine.door.liveness import (
    MIN_PARALLAX,
    affine_residual,
    apply_homography,
    inter_ocular,
    planar_parallax,
    similarity_residual,
)
from custom_components.compact_ai.engine.face.pipeline import FacePipeline
from tools.compact.errors import ToolError
from tools.compact.evaluate.liveness_render import (
    PhotoPose,
    camera_noise,
    pose_homography,
    print_photo,
    random_pose,
    turn_head,
    warp,
)
from tools.compact.evaluate.verify import primary_face

MEASURES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "similarity": similarity_residual,
    "affine": affine_residual,
    "homography": planar_parallax,
}
FLAT_BINS = ((0, 10), (10, 20), (20, 25), (25, 35))
YAW_BINS = ((5, 10), (10, 20), (20, 30))
SWEEP = (0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.10, 0.12, 0.15, 0.18, 0.20, 0.25, 0.30)
FRONTAL = PhotoPose(tilt_deg=0.0, axis_deg=0.0)
BEYOND = (35.0, 50.0)  # tilts past the family: does a measure's refusal hold there too?
REFUSED = ("flat", "static", "flat >35")  # families to refuse; the others should pass
TUNED = ("flat", "static")  # the families an operating point must refuse entirely


@dataclass(frozen=True, slots=True)
class Pair:
    """Two frames' keypoints and which family (and bin) they belong to."""

    family: str
    group: str
    a: np.ndarray
    b: np.ndarray


def load_pipeline(tier: str, pack_dir: Path | None, backend: str) -> FacePipeline:
    """Return the face pipeline Home Assistant runs for ``tier`` (both detectors if shipped)."""
    from custom_components.compact_ai.engine.errors import EngineError
    from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
    from tools.compact.pack.reference import load_pack

    try:
        return FaceRecognizer.load(load_pack(tier, pack_dir), tier, backend).pipeline
    except (EngineError, KeyError) as err:
        raise ToolError(f"cannot load tier {tier!r}: {err}") from err


def keypoints(pipeline: FacePipeline, frame: np.ndarray, refine: bool = False) -> np.ndarray | None:
    """Return the primary face's (6, 2) keypoints in ``frame``, or None without a face.

    With ``refine``, the detector runs again on a crop around the face (2.2 times the box):
    the face then fills the detector's input, so its keypoints are several times finer.
    """
    detections = pipeline.detect(frame)
    if not detections:
        return None
    face = primary_face(detections, frame.shape[1], frame.shape[0])
    if not refine:
        return face.keypoints
    x0, y0, x1, y1 = face.box
    half = 1.1 * max(x1 - x0, y1 - y0)
    left, top = max(0, int((x0 + x1) / 2 - half)), max(0, int((y0 + y1) / 2 - half))
    crop = np.ascontiguousarray(
        frame[top : int((y0 + y1) / 2 + half), left : int((x0 + x1) / 2 + half)]
    )
    again = pipeline.detect(crop)
    if not again:
        return face.keypoints
    in_crop = primary_face(again, crop.shape[1], crop.shape[0])
    refined: np.ndarray = in_crop.keypoints + np.array([left, top])
    return refined


def _bin(value: float, bins: tuple[tuple[int, int], ...]) -> str:
    for low, high in bins:
        if low <= value < high or (value == high == bins[-1][1]):
            return f"{low}-{high}"
    return f"{bins[-1][1]}+"


def _quality(rng: np.random.Generator) -> int:
    return int(rng.integers(70, 91))


class Collector:
    """Renders the frames of one identity, detects, and keeps pairs and keypoint errors."""

    def __init__(self, pipeline: FacePipeline, rng: np.random.Generator, refine: bool) -> None:
        """Start with no pairs; ``rng`` drives every pose and all noise."""
        self.pipeline = pipeline
        self.refine = refine
        self.rng = rng
        self.pairs: list[Pair] = []
        self.missed: dict[str, int] = {}
        self.errors: dict[str, list[np.ndarray]] = {}  # bin -> per-keypoint error / eye distance

    def _add(self, family: str, group: str, a: np.ndarray | None, b: np.ndarray | None) -> None:
        if a is None or b is None:
            key = f"{family} {group}"
            self.missed[key] = self.missed.get(key, 0) + 1
            return
        self.pairs.append(Pair(family, group, a, b))

    def keypoints(self, frame: np.ndarray) -> np.ndarray | None:
        """Return the primary face's keypoints (refined if asked)."""
        return keypoints(self.pipeline, frame, self.refine)

    def frame(self, photo: Image.Image, pose: PhotoPose) -> tuple[np.ndarray, np.ndarray]:
        """Return (noisy frame, homography) of the printed ``photo`` at ``pose``."""
        homography = pose_homography(pose, photo.size)
        return camera_noise(warp(photo, homography), self.rng, _quality(self.rng)), homography

    def _flat(
        self,
        sheet: Image.Image,
        ref: np.ndarray | None,
        ref_h: np.ndarray,
        pose: PhotoPose,
        family: str,
    ) -> None:
        """Pair the print at ``pose`` with the reference; keep its keypoint error."""
        frame, homography = self.frame(sheet, pose)
        found = self.keypoints(frame)
        group = (
            _bin(pose.tilt_deg, FLAT_BINS) if family == "flat" else "{:.0f}-{:.0f}".format(*BEYOND)
        )
        self._add(family, group, ref, found)
        if ref is not None and found is not None and family == "flat":
            truth = apply_homography(homography @ np.linalg.inv(ref_h), ref)
            error = np.linalg.norm(found - truth, axis=1) / inter_ocular(truth)
            self.errors.setdefault(group, []).append(error)

    def identity(self, photos: list[Path], warps: int, beyond: int = 0) -> None:
        """Collect every family's pairs for one identity's photos."""
        sheet = print_photo(Image.open(photos[0]).convert("RGB"))
        reference, ref_h = self.frame(sheet, FRONTAL)
        ref = self.keypoints(reference)
        for _ in range(warps):
            self._flat(sheet, ref, ref_h, random_pose(self.rng), "flat")
        for _ in range(beyond):
            self._flat(sheet, ref, ref_h, random_pose(self.rng, BEYOND[1], BEYOND[0]), "flat >35")
        shift = tuple(float(v) for v in self.rng.uniform(-0.5, 0.5, 2))
        still, _ = self.frame(sheet, PhotoPose(0.0, 0.0, shift=(shift[0], shift[1])))
        self._add("static", "0", ref, self.keypoints(still))
        if ref is not None:
            clean = np.asarray(warp(sheet, ref_h))
            for low, high in YAW_BINS:
                yaw = float(self.rng.uniform(low, high)) * float(self.rng.choice([-1, 1]))
                turned = Image.fromarray(turn_head(clean, ref, yaw))
                frame = camera_noise(turned, self.rng, _quality(self.rng))
                self._add("head turn", f"{low}-{high}", ref, self.keypoints(frame))
        found_all = [
            self.keypoints(self.frame(print_photo(Image.open(p).convert("RGB")), FRONTAL)[0])
            for p in photos
        ]
        for i, a in enumerate(found_all):
            for b in found_all[i + 1 :]:
                self._add("same person", "LFW", a, b)


def _rate(scores: np.ndarray, threshold: float, refused: bool) -> float:
    """Share of pairs refused (score below threshold) or accepted (at or above)."""
    below = scores < threshold
    return float(np.mean(below if refused else ~below)) if scores.size else float("nan")


def summarize(collector: Collector, shipped: float) -> dict[str, Any]:
    """Return per family and bin: pairs, missed, each measure's rate and distribution."""
    groups: dict[tuple[str, str], list[Pair]] = {}
    for pair in collector.pairs:
        groups.setdefault((pair.family, pair.group), []).append(pair)
    rows = []
    for (family, group), pairs in sorted(groups.items()):
        refused = family in REFUSED
        row: dict[str, Any] = {
            "family": family,
            "group": group,
            "pairs": len(pairs),
            "no_face": collector.missed.get(f"{family} {group}", 0),
            "counts": "refused" if refused else "accepted",
        }
        for name, measure in MEASURES.items():
            scores = np.array([measure(p.a, p.b) for p in pairs])
            row[name] = {
                "median": float(np.median(scores)),
                "p95": float(np.percentile(scores, 95)),
                "max": float(scores.max()),
                "min": float(scores.min()),
                "at_shipped": _rate(scores, shipped, refused),
                "sweep": {f"{t:.2f}": _rate(scores, t, refused) for t in SWEEP},
            }
        rows.append(row)
    operating = {}
    for name, measure in MEASURES.items():
        tuned = [measure(p.a, p.b) for p in collector.pairs if p.family in TUNED]
        threshold = float(np.nextafter(max(tuned), np.inf)) if tuned else float("nan")
        operating[name] = {
            "threshold": threshold,
            **{
                f"{family} {group}": _rate(
                    np.array([measure(p.a, p.b) for p in pairs]), threshold, family in REFUSED
                )
                for (family, group), pairs in sorted(groups.items())
                if family not in TUNED
            },
        }
    noise = {
        group: np.mean(np.vstack(errors), axis=0).round(4).tolist()
        for group, errors in sorted(collector.errors.items())
    }
    return {
        "shipped_threshold": shipped,
        "rows": rows,
        "operating_points": operating,
        "keypoint_error": noise,
    }


def identity_folders(faces: Path, count: int) -> list[Path]:
    """Return the first ``count`` identity folders under ``faces``, sorted by name."""
    if not faces.is_dir():
        raise ToolError(f"{faces}: not a folder")
    return sorted(p for p in faces.iterdir() if p.is_dir())[:count]


def evaluate_liveness(
    people: list[Path],
    pipeline: FacePipeline,
    *,
    warps: int = 12,
    beyond: int = 3,
    refine: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Collect every family's pairs from each identity folder's photos; summarize them."""
    collector = Collector(pipeline, np.random.default_rng(seed), refine)
    for person in people:
        photos = sorted(p for p in person.iterdir() if p.suffix.lower() in {".jpg", ".png"})
        if photos:
            collector.identity(photos, warps, beyond)
    return summarize(collector, MIN_PARALLAX)


def report_lines(report: dict[str, Any]) -> list[str]:
    """Return the tables ``liveness`` prints: per measure, operating points, keypoint noise."""
    shipped = report["shipped_threshold"]
    lines = [f"shipped threshold {shipped:.3f}; cells: % refused (flat, static) or % accepted"]
    for name in MEASURES:
        header = " ".join(f"{t:>5.2f}" for t in SWEEP)
        lines.append(f"\n{name} residual / eye distance")
        lines.append(
            f"{'family':<12}{'bin':>6}{'pairs':>6}{'miss':>5}  {'median':>7}{'max':>7}  "
            f"{'@ship':>6} | {header}"
        )
        for row in report["rows"]:
            stats = row[name]
            sweep = " ".join(f"{100 * v:5.0f}" for v in stats["sweep"].values())
            lines.append(
                f"{row['family']:<12}{row['group']:>6}{row['pairs']:>6}{row['no_face']:>5}  "
                f"{stats['median']:7.3f}{min(stats['max'], 99):7.3f}  "
                f"{100 * stats['at_shipped']:5.1f}% | {sweep}"
            )
    points = report["operating_points"]
    columns = [key for key in next(iter(points.values())) if key != "threshold"]
    lines.append(
        "\nlowest threshold refusing every flat (0-35) and static pair; % accepted/refused there"
    )
    lines.append(f"{'measure':<11}{'thresh':>7}  " + "".join(f"{c:>17}" for c in columns))
    for name, point in points.items():
        cells = "".join(f"{100 * point[c]:16.1f}%" for c in columns)
        lines.append(f"{name:<11}{point['threshold']:7.3f}  {cells}")
    lines.append("\nflat photo: mean keypoint error vs the true homography / eye distance")
    lines.append("bin     r.eye  l.eye  nose   mouth  r.ear  l.ear")
    for group, errors in report["keypoint_error"].items():
        lines.append(f"{group:<7}" + " ".join(f"{e:6.3f}" for e in errors))
    return lines

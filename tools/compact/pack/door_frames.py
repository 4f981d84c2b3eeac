"""``calibrate-door``: each tier's door distance, checked on door-camera frames.

``build-pack`` finds the distance at which no dev impostor passes on LFW crops. A doorbell frame
is harder: a small face, JPEG-compressed, aligned from few pixels; impostors come closer there
(SFace: 0.993 on 48 px frames, against 1.04 on crops). So, per tier, with the tier's own
pipeline (its detector's pixel budget and its embedder) on both backends: enroll 3 crops each of
the first 40 dev people (the door protocol, the way ``check-regressions`` measures it), probe
every ``doorcam.py`` frame (folders ``<kind>_<face width>/<person>/*.jpg``: day, grey, IR), and
lower the door distance to the closest impostor frame minus
:data:`GAP` (floored to 0.01) when that is below the pack's door distance. It is never raised,
not even by frames that miss the impostor an earlier calibration found. The
owners' per-frame TAR at the result is measured again on the crops and on the frames.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from tools.compact.errors import ToolError

if TYPE_CHECKING:
    from tools.compact.evaluate.identify import Split

GAP: Final = 0.02  # what the crops keep between the door distance and the closest impostor
PROTOCOL: Final = (3, 40)  # crops enrolled per person, people enrolled (the rest: impostors)
BACKENDS: Final = ("onnxruntime", "ncnn")
FRAME_SET: Final = re.compile(r"[a-z0-9]+_[0-9]+")  # doorcam_96, gray_64: <kind>_<face width>
EMBEDDER: Final = "face_embedder"


Probes = list[tuple[str, Path, np.ndarray | None]]


def _embed(pipeline: Any, plan: Split) -> tuple[dict[str, list[np.ndarray]], Probes]:
    """Embed ``plan``'s enrolled crops and its probes with ``pipeline``."""
    from tools.compact.evaluate.verify import Timer, embed_primary

    enrolled = {
        person: [
            e
            for path in images
            if (e := embed_primary(pipeline, path, Timer()).embedding) is not None
        ]
        for person, images in plan.enroll.items()
    }
    probes = [(t, p, embed_primary(pipeline, p, Timer()).embedding) for t, p in plan.probes]
    return enrolled, probes


def _results(
    enrolled: dict[str, list[np.ndarray]], probes: Probes, threshold: float, margin: float
) -> list[dict[str, Any]]:
    from custom_components.compact_ai.engine.face.gallery import Gallery
    from tools.compact.evaluate.identify import match_all

    gallery = Gallery(threshold=threshold, margin=margin)
    for person, embeddings in enrolled.items():
        for embedding in embeddings:
            gallery.add(person, embedding)
    return match_all(probes, gallery)


def _closest_impostor(enrolled: dict[str, list[np.ndarray]], probes: Probes) -> float:
    rows = _results(enrolled, probes, math.inf, 0.0)
    return min(
        (r["distance"] for r in rows if not r["known"] and r["distance"] is not None),
        default=math.inf,
    )


def _tar(rows: list[dict[str, Any]]) -> float:
    known = [r for r in rows if r["known"]]
    right = sum(r["status"] == "match" and r["person"] == r["truth"] for r in known)
    return float(right) / max(len(known), 1)


def door_distance(crops: float, closest_impostor: float) -> float:
    """Return ``crops``, or the closest impostor frame minus :data:`GAP` (floored) if lower."""
    if not closest_impostor - GAP > 0:  # also NaN
        raise ToolError(f"an impostor frame came to {closest_impostor}: no door distance is safe")
    lowered = math.floor(round((closest_impostor - GAP) * 100, 6)) / 100  # 0.03 - 0.02: 0.01
    if not lowered > 0:
        raise ToolError(f"an impostor frame came to {closest_impostor}: no door distance is safe")
    return min(crops, lowered)


@dataclass
class TierProbes:
    """One tier's embedded crops and frames on both backends, and its closest impostors."""

    crops: float  # the door distance the close-ups allow
    current: float  # the pack's door now (never widened)
    margin: float
    probed: dict[str, tuple[dict[str, list[np.ndarray]], Probes]]
    closest: float  # the closest impostor frame
    where: str  # its frame set and backend

    def result(self, distance: float, frames_count: int, shared: str) -> dict[str, Any]:
        """Return what the manifest records for a door at ``distance``."""
        tar = {
            key: round(_tar(_results(*value, distance, self.margin)), 4)
            for key, value in self.probed.items()
        }
        return {
            "unlock_threshold": distance,
            "unlock_threshold_crops": self.crops,
            "closest_impostor_frame": round(self.closest, 4),
            "door_tar_frames": {k: v for k, v in tar.items() if not k.startswith("crops_")},
            "door_tar_onnxruntime": tar["crops_onnxruntime"],
            "door_tar_ncnn": tar["crops_ncnn"],
            "door_tar": min(tar["crops_onnxruntime"], tar["crops_ncnn"]),
            "door_calibration": (
                f"{self.crops:g} let no dev impostor in on LFW crops (the pack's door: "
                f"{self.current:g}); on {frames_count} doorcam.py frames the closest impostor "
                f"came to {self.closest:.3f} ({self.where.replace('_', ' ')}){shared}: the door "
                f"distance is {distance:g}"
            ),
        }


def probe_tier(
    root: Path,
    tier: str,
    frames: dict[str, Path],
    faces: Path,
    exclude: frozenset[str],
    protocol: tuple[int, int] = PROTOCOL,
) -> TierProbes:
    """Embed the door protocol's crops and every frame with the tier's own pipeline."""
    from custom_components.compact_ai.engine.face.gallery import margin_for
    from custom_components.compact_ai.engine.face.recognizer import load_pipeline
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.evaluate.identify import split

    pack = ModelPack.load(root)
    entry = pack.model(tier, EMBEDDER)
    crops = float(entry.metrics.get("unlock_threshold_crops", entry.config["unlock_threshold"]))
    # from the door the pack has now, never wider: frames that miss an earlier close impostor
    # must not undo its calibration
    current = min(crops, float(entry.config["unlock_threshold"]))
    probed: dict[str, tuple[dict[str, list[np.ndarray]], Probes]] = {}
    for backend in BACKENDS:
        pipeline = load_pipeline(pack, tier, backend, threads=1)
        enrolled, probes = _embed(pipeline, split(faces, faces, *protocol, exclude))
        probed[f"crops_{backend}"] = enrolled, probes
        for name, folder in frames.items():
            plan = split(faces, folder, *protocol, exclude)
            probed[f"{name}_{backend}"] = enrolled, _embed(pipeline, plan)[1]
    nearest = {key: _closest_impostor(*value) for key, value in probed.items()}
    crops_nearest = min(nearest[f"crops_{b}"] for b in BACKENDS)
    if crops_nearest <= current:
        raise ToolError(f"{tier}: a crop impostor came to {crops_nearest:.3f}, inside the door")
    if all(math.isinf(v) for k, v in nearest.items() if not k.startswith("crops_")):
        raise ToolError(f"{tier}: no impostor frame showed a face: nothing to calibrate against")
    where, closest = min(
        ((k, v) for k, v in nearest.items() if not k.startswith("crops_")), key=lambda kv: kv[1]
    )
    margin = margin_for(float(entry.config["threshold"]))
    return TierProbes(crops, current, margin, probed, closest, where)


def calibrate_door(
    root: Path,
    frames: Path,
    faces: Path,
    exclude: frozenset[str],
    protocol: tuple[int, int] = PROTOCOL,
) -> dict[str, dict[str, Any]]:
    """Calibrate every tier of the pack at ``root`` and record the result in its manifest.

    Tiers that share an embedder share one door distance, the lowest any of them needs: the
    distance is the embedder's; a tier whose detector misses an impostor's small face must not
    open wider for a face it does see.
    """
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.pack.writer import read_manifest, write_manifest

    folders = {sub.name: sub for sub in sorted(frames.iterdir()) if FRAME_SET.fullmatch(sub.name)}
    if not folders:
        raise ToolError(f"{frames}: no <kind>_<W> folders, e.g. doorcam_96 (doorcam.py makes them)")
    count = sum(len(list(f.glob("*/*.jpg"))) for f in folders.values())
    manifest = read_manifest(root)
    pack = ModelPack.load(root)
    probes = {
        tier: probe_tier(root, tier, folders, faces, exclude, protocol)
        for tier in manifest["tiers"]
    }
    groups: dict[str, list[str]] = {}
    for tier in probes:
        files = pack.model(tier, EMBEDDER).files
        groups.setdefault(",".join(f.sha256 for fs in files.values() for f in fs), []).append(tier)
    measured = {}
    for tiers in groups.values():
        distance = min(door_distance(probes[t].current, probes[t].closest) for t in tiers)
        shared = f"; the same embedder on {', '.join(tiers)}" if len(tiers) > 1 else ""
        for tier in tiers:
            measured[tier] = probes[tier].result(distance, count, shared)
    for tier, result in measured.items():
        entry = manifest["tiers"][tier]["models"][EMBEDDER]
        entry["config"]["unlock_threshold"] = result["unlock_threshold"]
        entry["metrics"] |= result
    write_manifest(root, manifest)
    return measured

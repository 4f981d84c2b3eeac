"""``detect-recall``: face detection recall against hand-drawn boxes (dlib's imglab XML).

Each ``--boxes`` file lists images (``<image file=...>``) and their faces (``<box top left
width height>``; ``ignore='1'`` boxes are left out); an image is looked up in ``--images`` by
its name, or by its name with ``--prefix`` (``dlib_`` for ``../shared/evaldata/faces_multi``).
Every image goes through the tier's own pipeline, as a camera frame does (decoded at the
tier's scale, detected in frame pixels). A box is found when one detection's centre lies in
it and its centre in the detection (one detection per box, best score first: box conventions
differ between detectors). Reported: recall over all boxes and by box width, detections that
match no box, and ms per image.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custom_components.compact_ai.engine.errors import ImageDecodeError
from custom_components.compact_ai.engine.face.detector import Detection
from custom_components.compact_ai.engine.face.pipeline import FacePipeline
from tools.compact.errors import ToolError
from tools.compact.evaluate.verify import Timer

Box = tuple[float, float, float, float]
SIZES = ((0, 48), (48, 96), (96, 100_000))  # box width buckets, frame pixels


@dataclass(frozen=True)
class Labelled:
    """One image and its hand-drawn face boxes (x0, y0, x1, y1)."""

    path: Path
    boxes: list[Box]


def read_boxes(files: list[Path], images: Path, prefix: str = "") -> list[Labelled]:
    """Read imglab XML files; resolve every image in ``images`` (optionally ``prefix``-ed)."""
    labelled = []
    for file in files:
        try:
            root = ElementTree.parse(file).getroot()
        except (OSError, ElementTree.ParseError) as err:
            raise ToolError(f"{file}: {err}") from err
        for image in root.iter("image"):
            name = image.get("file", "")
            path = next(
                (p for p in (images / name, images / f"{prefix}{name}") if p.is_file()), None
            )
            if path is None:
                raise ToolError(f"{file}: {name} is not in {images}")
            boxes = []
            for box in image.iter("box"):
                if box.get("ignore") == "1":
                    continue
                left, top = float(box.get("left", 0)), float(box.get("top", 0))
                width, height = float(box.get("width", 0)), float(box.get("height", 0))
                boxes.append((left, top, left + width, top + height))
            labelled.append(Labelled(path, boxes))
    if not labelled:
        raise ToolError("no labelled images")
    return labelled


def _inside(point: tuple[float, float], box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def match(truth: list[Box], found: list[Detection]) -> list[bool]:
    """Return, per true box, whether a detection (each used once) is that face."""
    free = sorted(found, key=lambda d: -d.score)
    hits = []
    for box in truth:
        hit = next(
            (d for d in free if _inside(_centre(d.box), box) and _inside(_centre(box), d.box)),
            None,
        )
        if hit is not None:
            free.remove(hit)
        hits.append(hit is not None)
    return hits


def evaluate(pipeline: FacePipeline, labelled: list[Labelled]) -> dict[str, Any]:
    """Detect in every image; return recall overall and by size, extra detections, ms."""
    timer = Timer()
    hits: list[tuple[float, bool]] = []  # (box width, found)
    extra = 0
    rows = []
    for item in labelled:
        try:
            scan = pipeline.scan(item.path.read_bytes(), choose=lambda faces, w, h: [])
        except (OSError, ImageDecodeError) as err:
            raise ToolError(f"{item.path}: {err}") from err
        timer.add(scan.ms, 0)
        detections = scan.detections
        found = match(item.boxes, detections)
        hits += [(box[2] - box[0], hit) for box, hit in zip(item.boxes, found, strict=True)]
        extra += len(detections) - sum(found)
        rows.append({"image": item.path.name, "faces": len(item.boxes), "found": sum(found)})
    by_size = {}
    for low, high in SIZES:
        inside = [hit for width, hit in hits if low <= width < high]
        if inside:
            by_size[f"{low}-{high if high < 100_000 else ''}"] = sum(inside) / len(inside)
    return {
        "images": len(labelled),
        "faces": len(hits),
        "recall": sum(hit for _, hit in hits) / max(len(hits), 1),
        "recall_by_width": by_size,
        "false_detections": extra,
        **timer.report(),
        "results": rows,
    }


def report_lines(report: dict[str, Any]) -> list[str]:
    """Return the line ``detect-recall`` prints."""
    sizes = ", ".join(f"{key} px {value:.0%}" for key, value in report["recall_by_width"].items())
    return [
        f"{report['faces']} faces in {report['images']} images: recall {report['recall']:.1%} "
        f"({sizes}); {report['false_detections']} false detections; "
        f"{report['ms_per_frame']:.1f} ms per image"
    ]

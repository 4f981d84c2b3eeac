"""Derive ``face_align.TEMPLATE``: where BlazeFace keypoints land in dlib's 150 px face chips.

For each image: dlib's frontal detector, 5-point shape predictor and ``get_face_chip_details``
(size 150, padding 0.25) give dlib's chip; BlazeFace gives its keypoints in the same image;
the keypoints are mapped into the chip with dlib's image-to-chip transform (the rotated chip
rectangle onto the chip corners, as dlib's ``get_mapping_to_chip`` does) and averaged.
The mapping is checked on every face: our warp with it must reproduce dlib's chip pixels.

Needs ``dlib-bin`` (a development tool only; the integration never imports dlib)::

    python -m tools.compact derive-chip-template --images ../shared/evaldata/faces --people 20
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.face import detector as face_detector
from custom_components.compact_ai.engine.face.align import ALIGN_KEYPOINTS, warp_affine
from custom_components.compact_ai.engine.face.image import decode_image
from tools.compact.errors import ToolError
from tools.compact.pack.sources import source_path

CHIP_SIZE = 150
PADDING = 0.25
MAX_PIXEL_ERROR = 2.0  # mean |our warp - dlib's chip| per channel, 0..255
NAMES = ("right eye", "left eye", "nose tip", "mouth")


def dlib_chip_matrix(chip: Any) -> np.ndarray:
    """Return the 2x3 frame-to-chip affine of a dlib ``chip_details``."""
    rect = chip.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    cos, sin = np.cos(chip.angle), np.sin(chip.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    corners = np.array(
        [[rect.left(), rect.top()], [rect.right(), rect.top()], [rect.right(), rect.bottom()]]
    )
    source = (corners - centre) @ rotation.T + centre
    target = np.array([[0, 0], [chip.cols - 1, 0], [chip.cols - 1, chip.rows - 1]], float)
    return np.asarray(np.linalg.solve(np.hstack([source, np.ones((3, 1))]), target).T)


def _blazeface(variant: str) -> tuple[Any, face_detector.DetectorConfig, np.ndarray]:
    import onnxruntime as ort

    from tools.compact.importers.tflite import import_tflite

    config = face_detector.VARIANTS[variant]
    model = import_tflite(source_path(f"face_detection_{variant}_range.tflite"))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session, config, face_detector.ssd_anchors(config)


@dataclass(frozen=True)
class Template:
    """Mean and spread (4, 2) of the keypoints in dlib chip pixels, and the faces behind them."""

    mean: np.ndarray
    std: np.ndarray
    used: int
    images: int

    def lines(self) -> list[str]:
        """Return the template as the rows of a Python literal, with each point's spread."""
        return [
            f"        [{x:.2f}, {y:.2f}],  # {name}: std {sx:.2f}, {sy:.2f} px"
            for name, (x, y), (sx, sy) in zip(NAMES, self.mean, self.std, strict=True)
        ]


def load_dlib() -> ModuleType:
    """Import dlib, which only this development command needs."""
    try:
        return importlib.import_module("dlib")
    except ImportError as err:
        raise ToolError("derive-chip-template needs dlib: pip install dlib-bin") from err


def people_images(folder: Path, people: int) -> list[Path]:
    """Return the JPEGs of the first ``people`` identity folders (sorted) under ``folder``."""
    if not folder.is_dir():
        raise ToolError(f"{folder}: not a folder")
    chosen = sorted(p for p in folder.iterdir() if p.is_dir())[:people]
    return [image for person in chosen for image in sorted(person.glob("*.jpg"))]


def derive(dlib: ModuleType, images: list[Path], variant: str) -> Template:
    """Map BlazeFace's keypoints into dlib's chip of every image where both find the face."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(source_path("shape_predictor_5_face_landmarks.dat")))
    session, config, anchors = _blazeface(variant)
    points = []
    for path in images:
        image = decode_image(path.read_bytes())
        boxes, scores, _ = detector.run(image, 1, 0)
        tensor, box = face_detector.letterbox(image, config.input_size)
        faces = face_detector.postprocess(
            session.run(None, {"input": tensor}), anchors, box, config
        )
        if not boxes or not faces:
            continue
        shape = predictor(image, boxes[int(np.argmax(scores))])
        chip = dlib.get_face_chip_details(shape, size=CHIP_SIZE, padding=PADDING)
        matrix = dlib_chip_matrix(chip)
        reference = np.asarray(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=PADDING))
        error = np.abs(warp_affine(image, matrix, CHIP_SIZE).astype(float) - reference).mean()
        if error > MAX_PIXEL_ERROR:
            raise ToolError(f"{path}: the chip mapping is off by {error:.2f} grey levels")
        keypoints = faces[0].keypoints[list(ALIGN_KEYPOINTS)]
        mapped = keypoints @ matrix[:, :2].T + matrix[:, 2]
        if np.all((mapped > 0) & (mapped < CHIP_SIZE)):  # the same face, not another one
            points.append(mapped)
    if not points:
        raise ToolError("no face was found by both dlib and BlazeFace")
    stacked = np.stack(points)
    return Template(stacked.mean(axis=0), stacked.std(axis=0), len(points), len(images))

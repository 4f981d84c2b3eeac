"""BlazeFace (MediaPipe face detection) pre- and post-processing, model-free.

The short range model sees a 128 px square and finds faces within about 2 m; the full range
model sees 192 px and finds smaller faces (a doorway camera). Both output, per anchor, 16
regressors (box centre x/y, width, height, then 6 keypoints as x/y) and one logit.

The options mirror MediaPipe's ``face_detection_{short,full}_range.pbtxt`` and
``face_detection.pbtxt``: SSD anchors with ``fixed_anchor_size`` (every anchor is 1x1 in
normalized units, so only the centres matter), ``anchor_offset`` 0.5, aspect ratio 1.0 plus an
interpolated anchor when ``interpolated_scale_aspect_ratio`` > 0; the input letterboxed (aspect
kept, zero border) and scaled to [-1, 1]; scores as ``sigmoid(clip(logit, ±100))``; and
"WEIGHTED" non-maximum suppression with IoU 0.3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

DETECTOR_INPUT: Final = "input"  # the BlazeFace models' input name, kept from TFLite

NUM_KEYPOINTS: Final = 6
# Keypoint order in the model output (the person's right eye is on the image's left).
RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH, RIGHT_EAR, LEFT_EAR = range(NUM_KEYPOINTS)
SCORE_CLIP: Final = 100.0
IOU_THRESHOLD: Final = 0.3


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    """Anchor and decoding options of one BlazeFace variant."""

    variant: str
    input_size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    num_anchors: int
    min_score: float = 0.5
    iou_threshold: float = IOU_THRESHOLD


SHORT_RANGE: Final = DetectorConfig("short", 128, (8, 16, 16, 16), 1.0, 896)
FULL_RANGE: Final = DetectorConfig("full", 192, (4,), 0.0, 2304)
VARIANTS: Final = {config.variant: config for config in (SHORT_RANGE, FULL_RANGE)}


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was scaled and padded into the square model input."""

    scale_x: float  # model-input pixels per frame pixel, horizontally
    scale_y: float  # the same vertically (differs from scale_x only by rounding)
    pad_x: int  # left border, model-input pixels
    pad_y: int  # top border, model-input pixels
    size: int  # side of the model input

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map normalized model-input coordinates (..., 2) to frame pixels."""
        pixels = points * self.size - np.array([self.pad_x, self.pad_y])
        return np.asarray(pixels / np.array([self.scale_x, self.scale_y]), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Detection:
    """A face in frame pixels: box (x0, y0, x1, y1), 6 keypoints (x, y) and score.

    ``landmarks`` are YuNet's five points (eyes, nose tip, mouth corners) when YuNet
    proposed the face (see ``cascade.py``); the alignment uses BlazeFace's ``keypoints``.
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray  # float64 (6, 2)
    score: float
    landmarks: np.ndarray | None = None  # float64 (5, 2)


def ssd_anchors(config: DetectorConfig) -> np.ndarray:
    """Return the anchor centres (N, 2) as normalized (x, y), in MediaPipe's order.

    Consecutive layers with the same stride share one feature map; each layer adds one
    anchor per aspect ratio (here 1.0) and one interpolated anchor per location.
    """
    per_location = 1 + (config.interpolated_scale_aspect_ratio > 0)
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(config.strides):
        stride = config.strides[layer]
        group = layer
        while group < len(config.strides) and config.strides[group] == stride:
            group += 1
        count = (group - layer) * per_location
        cells = -(-config.input_size // stride)  # ceil
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = (np.stack([xs, ys], axis=-1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, count, axis=0))
        layer = group
    anchors: np.ndarray = np.concatenate(centres).astype(np.float64)
    if len(anchors) != config.num_anchors:
        raise ValueError(f"{config.variant}: {len(anchors)} anchors, expected {config.num_anchors}")
    return anchors


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` (H, W, 3) uint8 into a size x size square; return NHWC float in [-1, 1]."""
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_w = min(size, max(1, round(width * scale)))
    new_h = min(size, max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), dtype=np.uint8)
    square[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    tensor = (square.astype(np.float32) / 127.5 - 1.0)[np.newaxis]
    return tensor, Letterbox(new_w / width, new_h / height, pad_x, pad_y, size)


def decode(
    regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, config: DetectorConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw outputs into boxes (K, 4), keypoints (K, 6, 2) and scores (K,).

    Coordinates are normalized to the model input; only anchors scoring at least
    ``config.min_score`` are kept.
    """
    raw = regressors.reshape(-1, 16).astype(np.float64)
    clipped = np.clip(logits.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-clipped))
    keep = scores >= config.min_score
    raw, centres, scores = raw[keep], anchors[keep], scores[keep]
    scale = float(config.input_size)
    middle = raw[:, 0:2] / scale + centres
    half = raw[:, 2:4] / scale / 2.0
    boxes = np.concatenate([middle - half, middle + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, NUM_KEYPOINTS, 2) / scale + centres[:, np.newaxis, :]
    return boxes, keypoints, scores


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Return the IoU of one box (4,) with each of ``others`` (K, 4)."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    The best remaining detection absorbs every detection overlapping it by more than
    ``iou_threshold`` (itself included); the merged box and keypoints are the score-weighted
    mean of the cluster, the score is the best one's.
    """
    order = np.argsort(-scores, kind="stable")
    out_boxes, out_points, out_scores = [], [], []
    while order.size:
        best = order[0]
        overlap = iou(boxes[best], boxes[order]) > iou_threshold
        overlap[0] = True
        cluster = order[overlap]
        weights = scores[cluster] / scores[cluster].sum()
        out_boxes.append(np.tensordot(weights, boxes[cluster], axes=1))
        out_points.append(np.tensordot(weights, keypoints[cluster], axes=1))
        out_scores.append(scores[best])
        order = order[~overlap]
    if not out_scores:
        return np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros(0)
    return np.stack(out_boxes), np.stack(out_points), np.asarray(out_scores)


def split_outputs(outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return (regressors, logits) from the model outputs, whichever order they come in."""
    if len(outputs) != 2:
        raise ValueError(f"BlazeFace has 2 outputs, got {len(outputs)}")
    first, second = outputs
    return (first, second) if first.shape[-1] == 16 else (second, first)


def postprocess(
    outputs: list[np.ndarray], anchors: np.ndarray, box: Letterbox, config: DetectorConfig
) -> list[Detection]:
    """Turn raw model outputs into detections in frame pixels, best score first."""
    regressors, logits = split_outputs(outputs)
    boxes, keypoints, scores = decode(regressors, logits, anchors, config)
    boxes, keypoints, scores = weighted_nms(boxes, keypoints, scores, config.iou_threshold)
    corners = box.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    points = box.to_frame(keypoints)
    return [
        Detection(
            box=(float(c[0]), float(c[1]), float(c[2]), float(c[3])),
            keypoints=p,
            score=float(s),
        )
        for c, p, s in zip(corners, points, scores, strict=True)
    ]


def merge_detections(detections: list[Detection], iou_threshold: float) -> list[Detection]:
    """Merge the detections of several detectors: best score first, overlaps dropped."""
    kept: list[Detection] = []
    for detection in sorted(detections, key=lambda d: -d.score):
        box = np.asarray(detection.box)
        if kept and np.any(iou(box, np.asarray([k.box for k in kept])) > iou_threshold):
            continue
        kept.append(detection)
    return kept


def detect_faces(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    image: np.ndarray,
    config: DetectorConfig,
    anchors: np.ndarray,
) -> list[Detection]:
    """Run one BlazeFace model (``run``) on a frame; return its detections in frame pixels."""
    tensor, box = letterbox(image, config.input_size)
    return postprocess(run({DETECTOR_INPUT: tensor}), anchors, box, config)

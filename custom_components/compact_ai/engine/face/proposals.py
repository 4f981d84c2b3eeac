"""YuNet face proposals: pre- and post-processing, model-free.

YuNet (OpenCV Zoo, libfacedetection) takes a picture of any size whose sides are multiples
of 32, as BGR floats 0..255 without normalization, and finds faces from about 10 to 300 px.
For each stride ``s`` (8, 16, 32) and cell (row ``r``, column ``c``) of its grid it outputs a
class and an objectness probability, a box and five landmarks; decoded as OpenCV's
``FaceDetectorYN`` does: score ``sqrt(cls * obj)``, centre ``((c, r) + (dx, dy)) * s``, size
``exp(dw, dh) * s``, landmark ``((c, r) + (kx, ky)) * s``, then non-maximum suppression at
IoU 0.3. Landmarks: right eye, left eye (the person's; image left first), nose tip, right and
left mouth corner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

PROPOSER_INPUT: Final = "input"
STRIDES: Final = (8, 16, 32)
NUM_LANDMARKS: Final = 5
MIN_SCORE: Final = 0.6  # OpenCV's default score threshold
IOU_THRESHOLD: Final = 0.3
MAX_CANDIDATES: Final = 1000  # best scores kept before suppression: bounded work on any frame


@dataclass(frozen=True, slots=True)
class Proposal:
    """A face YuNet found: box (x0, y0, x1, y1), five landmarks (x, y) and score, in pixels."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray  # float64 (5, 2)
    score: float

    @property
    def width(self) -> float:
        """The box's larger side."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def padded_size(height: int, width: int) -> tuple[int, int]:
    """Return (height, width) rounded up to multiples of 32 (the zero-padded model input)."""
    return -(-height // 32) * 32, -(-width // 32) * 32


def to_blob(image: np.ndarray) -> np.ndarray:
    """Return the (1, 3, H32, W32) float32 BGR input of an RGB uint8 picture, zero-padded."""
    height, width = image.shape[:2]
    blob = np.zeros((1, 3, *padded_size(height, width)), dtype=np.float32)
    blob[0, :, :height, :width] = image[..., ::-1].transpose(2, 0, 1)
    return blob


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Return the indices kept by greedy non-maximum suppression, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        x0 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        union = areas[best] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        order = rest[overlap <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode(
    outputs: Mapping[str, np.ndarray],
    input_size: tuple[int, int],
    min_score: float = MIN_SCORE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode raw outputs into boxes (K, 4), landmarks (K, 5, 2), scores (K,) in input pixels.

    ``input_size`` is the padded (height, width) the model ran on; only cells scoring at least
    ``min_score`` are kept.
    """
    width = input_size[1]
    boxes, points, scores = [], [], []
    for stride in STRIDES:
        columns = width // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1).astype(np.float64), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1).astype(np.float64), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        index = np.flatnonzero(score >= min_score)
        cells = np.stack([index % columns, index // columns], axis=1).astype(np.float64)
        raw = outputs[f"bbox_{stride}"].reshape(-1, 4)[index].astype(np.float64)
        centre = (cells + raw[:, :2]) * stride
        half = np.exp(np.clip(raw[:, 2:], -20.0, 20.0)) * stride / 2
        boxes.append(np.concatenate([centre - half, centre + half], axis=1))
        landmarks = outputs[f"kps_{stride}"].reshape(-1, NUM_LANDMARKS, 2)[index]
        points.append((cells[:, np.newaxis, :] + landmarks.astype(np.float64)) * stride)
        scores.append(score[index])
    return np.concatenate(boxes), np.concatenate(points), np.concatenate(scores)


def propose(
    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    output_names: tuple[str, ...],
    image: np.ndarray,
    min_score: float = MIN_SCORE,
) -> list[Proposal]:
    """Run YuNet (``run``) on an RGB picture; return its faces in picture pixels, best first."""
    blob = to_blob(image)
    outputs = dict(zip(output_names, run({PROPOSER_INPUT: blob}), strict=True))
    boxes, points, scores = decode(outputs, padded_size(*image.shape[:2]), min_score)
    best = np.argsort(-scores, kind="stable")[:MAX_CANDIDATES]
    chosen = best[nms(boxes[best], scores[best], IOU_THRESHOLD)]
    return [
        Proposal((float(b[0]), float(b[1]), float(b[2]), float(b[3])), p, float(s))
        for b, p, s in zip(boxes[chosen], points[chosen], scores[chosen], strict=True)
    ]

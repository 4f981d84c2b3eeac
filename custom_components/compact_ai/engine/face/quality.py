"""Per-face quality measures the Home Assistant layer gates on (size, blur, frontalness)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detector import LEFT_EAR, LEFT_EYE, NOSE_TIP, RIGHT_EAR, RIGHT_EYE, Detection


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """How usable one face is for recognition.

    ``eye_distance`` and ``box_width`` are frame pixels; ``sharpness`` is the variance of the
    Laplacian of the grey 150 px chip (low = blurred or upscaled from a tiny face);
    ``nose_offset`` is the nose tip's shift from the eye midpoint along the eye line, in eye
    distances (0 frontal, about ±0.5 in profile); ``ear_asymmetry`` is (r - l) / (r + l) of the
    eye-to-ear distances on each side (0 frontal, ±1 in profile); ``frontalness`` is 1 for a
    frontal face and falls to 0 as either measure grows.
    """

    eye_distance: float
    box_width: float
    sharpness: float
    nose_offset: float
    ear_asymmetry: float
    frontalness: float


def laplacian_variance(chip: np.ndarray) -> float:
    """Return the variance of the 4-neighbour Laplacian of ``chip`` (H, W, 3) in grey."""
    grey = chip.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    laplacian = (
        grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4 * grey[1:-1, 1:-1]
    )
    return float(laplacian.var())


def assess(detection: Detection, chip: np.ndarray) -> FaceQuality:
    """Measure one detected face and its aligned chip."""
    points = detection.keypoints
    right_eye, left_eye = points[RIGHT_EYE], points[LEFT_EYE]
    eye_vector = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vector))
    unit = eye_vector / max(eye_distance, 1e-9)
    nose_offset = float((points[NOSE_TIP] - (right_eye + left_eye) / 2) @ unit) / max(
        eye_distance, 1e-9
    )
    right = float(np.hypot(*(points[RIGHT_EAR] - right_eye)))
    left = float(np.hypot(*(points[LEFT_EAR] - left_eye)))
    ear_asymmetry = (right - left) / max(right + left, 1e-9)
    frontalness = 1.0 - min(1.0, max(2.0 * abs(nose_offset), abs(ear_asymmetry)))
    return FaceQuality(
        eye_distance=eye_distance,
        box_width=detection.box[2] - detection.box[0],
        sharpness=laplacian_variance(chip),
        nose_offset=nose_offset,
        ear_asymmetry=ear_asymmetry,
        frontalness=frontalness,
    )

"""A head's six BlazeFace keypoints in 3-D, turned and seen by a pinhole camera (exact)."""

from __future__ import annotations

import numpy as np

# Inter-ocular units (x right, y down, z towards the camera), BlazeFace's order: right eye,
# left eye, nose tip (in front of the eyes), mouth, right ear, left ear (behind the eyes).
HEAD = np.array(
    [
        [-0.5, 0.0, 0.0],
        [0.5, 0.0, 0.0],
        [0.0, 0.45, 0.35],
        [0.0, 0.85, 0.1],
        [-1.05, 0.3, -0.9],
        [1.05, 0.3, -0.9],
    ]
)
FLAT = HEAD * np.array([1.0, 1.0, 0.0])  # the same face printed: every point in one plane
FOCAL = 640.0


def project(points: np.ndarray, yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """Pixels of 3-D ``points`` turned about the head's centre, 8 eye distances away."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    nod = np.array(
        [[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]]
    )
    centre = np.array([0.0, 0.3, -0.8])
    moved = (points - centre) @ (nod @ turn).T + centre
    depth = 8.0 - moved[:, 2]
    return np.asarray(FOCAL * moved[:, :2] / depth[:, None] + np.array([320.0, 240.0]))

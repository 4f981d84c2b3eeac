"""Liveness from face keypoints: tell a flat picture from a head that moved.

Whatever a flat photo or a screen does in front of the camera (shift, turn, tilt, zoom), the
image of its plane in one frame maps to its image in another by one homography, so its
keypoints follow that homography up to detector noise. A live head is not flat: the nose
sticks out of the eye-mouth plane and the ears lie behind it, so when the head turns they
shift against each other (parallax) and no homography explains all of them.

This module fits three models of growing freedom to the keypoints of two frames and returns
the RMS residual per inter-ocular distance: similarity (4 DOF: rigid in the image plane),
affine (6 DOF: adds a flat photo turned far from the camera) and homography (8 DOF: any flat
picture under perspective). With BlazeFace's 6 keypoints only the homography residual is 0 for
every flat picture; the lower models read its perspective as "motion".
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

Points = NDArray[np.float64]

# The liveness threshold: the homography residual (per eye distance) below which two frames
# are taken for a flat picture. ``python -m tools.compact liveness``: every print tilted or
# panned 0-50 degrees (with roll, zoom, shift, JPEG) scored below it (largest 0.25 of 1 199
# pairs). The keypoints' own noise (0.1-0.2 eye distance for a face 100 px wide) is as large
# as a head's parallax, so only ~6 % of real pose changes reach it: see README's door section.
MIN_PARALLAX: Final = 0.3
MIN_KEYPOINTS: Final = 5  # a homography has 8 DOF: 4 points fit it exactly, 5 are the least test


def inter_ocular(points: Points) -> float:
    """Return the distance between the first two keypoints (BlazeFace: right, left eye)."""
    return float(np.linalg.norm(points[0] - points[1]))


def _rms(predicted: Points, target: Points) -> float:
    """RMS distance of the predicted to the target keypoints, per the target's eye distance."""
    scale = inter_ocular(target)
    if scale == 0.0:
        return 0.0
    return float(np.sqrt(np.mean(np.sum((predicted - target) ** 2, axis=1))) / scale)


def _normalizer(points: Points) -> NDArray[np.float64] | None:
    """Hartley's conditioning: centroid to 0, mean distance sqrt(2); None if collinear."""
    centre = points.mean(axis=0)
    spread = float(np.mean(np.linalg.norm(points - centre, axis=1)))
    if spread == 0.0:
        return None
    singular = np.linalg.svd(points - centre, compute_uv=False)
    if singular[-1] <= 1e-6 * singular[0]:
        return None  # all on one line: a homography is not determined
    s = np.sqrt(2.0) / spread
    return np.array([[s, 0.0, -s * centre[0]], [0.0, s, -s * centre[1]], [0.0, 0.0, 1.0]])


def _homogeneous(points: Points) -> Points:
    return np.hstack([points, np.ones((len(points), 1))])


def similarity_residual(a: Points, b: Points) -> float:
    """Return the residual after the best similarity map a -> b (rotation, scale, shift)."""
    ca, cb = a - a.mean(axis=0), b - b.mean(axis=0)
    za, zb = ca[:, 0] + 1j * ca[:, 1], cb[:, 0] + 1j * cb[:, 1]
    denom = float(np.vdot(za, za).real)
    if denom == 0.0:
        return 0.0
    factor = np.vdot(za, zb) / denom  # least-squares complex scale-rotation
    fitted = factor * za
    predicted = np.stack([fitted.real, fitted.imag], axis=1) + b.mean(axis=0)
    return _rms(predicted, b)


def affine_residual(a: Points, b: Points) -> float:
    """Return the residual after the best affine map a -> b (least squares)."""
    design = _homogeneous(a)
    if np.linalg.matrix_rank(design) < 3:
        return 0.0  # collinear keypoints: nothing to measure
    solution, *_ = np.linalg.lstsq(design, b, rcond=None)
    return _rms(design @ solution, b)


def fit_homography(a: Points, b: Points) -> NDArray[np.float64] | None:
    """Return the 3x3 homography a -> b by the normalized DLT, or None if degenerate."""
    ta, tb = _normalizer(a), _normalizer(b)
    if ta is None or tb is None or len(a) < 4:
        return None
    na, nb = _homogeneous(a) @ ta.T, _homogeneous(b) @ tb.T
    rows = []
    for (x, y, w), (u, v, q) in zip(na, nb, strict=True):
        rows.append([0, 0, 0, -q * x, -q * y, -q * w, v * x, v * y, v * w])
        rows.append([q * x, q * y, q * w, 0, 0, 0, -u * x, -u * y, -u * w])
    _, singular, vt = np.linalg.svd(np.asarray(rows))
    if singular[7] <= 1e-12 * singular[0]:
        return None  # keypoints (nearly) collinear: no unique homography
    normalized = vt[-1].reshape(3, 3)
    homography: NDArray[np.float64] = np.linalg.inv(tb) @ normalized @ ta
    return homography


def apply_homography(homography: NDArray[np.float64], points: Points) -> Points:
    """Map (K, 2) points through a 3x3 homography."""
    mapped = _homogeneous(points) @ homography.T
    return mapped[:, :2] / mapped[:, 2:3]


def homography_residual(a: Points, b: Points) -> float:
    """Return the residual after the best homography a -> b: ~0 for any flat picture."""
    if len(a) < MIN_KEYPOINTS:
        return 0.0  # 4 points always fit: no evidence either way
    homography = fit_homography(a, b)
    if homography is None:
        return 0.0
    mapped = _homogeneous(a) @ homography.T
    if np.any(np.abs(mapped[:, 2]) < 1e-12):
        return 0.0
    return _rms(mapped[:, :2] / mapped[:, 2:3], b)


def planar_parallax(a: Points, b: Points) -> float:
    """Return the liveness score of two frames' keypoints: what no flat picture can do.

    The symmetric homography residual (the mean of a -> b and b -> a), so the score does
    not depend on which frame came first.
    """
    return 0.5 * (homography_residual(a, b) + homography_residual(b, a))

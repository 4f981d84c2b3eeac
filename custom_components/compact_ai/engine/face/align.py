"""Face alignment: BlazeFace keypoints -> a 150x150 chip framed like dlib's ``get_face_chip``.

The dlib ResNet embedder was trained on chips made by ``get_face_chip(img, shape, size=150,
padding=0.25)`` from dlib's 5-point landmarks. We map four BlazeFace keypoints (eyes, nose tip,
mouth) onto :data:`TEMPLATE`, the place those keypoints take on average in dlib's chips, with a
least-squares similarity transform (Umeyama), and warp with bilinear sampling in Pillow (no
OpenCV: it has no wheels for Home Assistant's musl images).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from PIL import Image

from .detector import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE

CHIP_SIZE: Final = 150
ALIGN_KEYPOINTS: Final = (RIGHT_EYE, LEFT_EYE, NOSE_TIP, MOUTH)
# Where ALIGN_KEYPOINTS land, as (x, y) pixels, in dlib's 150 px chips (padding 0.25).
# Derived by tools/compact/pack/chip_template.py (--people 40 --variant short): dlib's frontal
# detector, 5-point shape predictor and chip mapping, and the short range BlazeFace, on the
# first 40 LFW identities (395 of 400 faces); each value is the mean over those faces (std about
# 2.5 px for the eyes, 4 px for the mouth, 7 px for the nose tip). The full range detector's
# keypoints land within 1.7 px of these.
TEMPLATE: Final = np.array(
    [
        [45.79, 46.01],  # right eye (image left)
        [102.42, 46.77],  # left eye
        [74.78, 78.73],  # nose tip
        [73.91, 108.48],  # mouth
    ]
)
_ANTIALIAS_FROM: Final = 2  # downscale the frame first when a chip pixel spans >= 2 pixels


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Return the 2x3 similarity (rotation, uniform scale, shift) mapping ``src`` to ``dst``.

    Least squares over the point pairs (N, 2), with Umeyama's reflection guard.
    """
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, float(np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0)])
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign) / (src_c**2).sum(axis=1).mean())
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, np.newaxis]])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Return the size x size uint8 chip whose pixel (u, v) is ``image`` at ``matrix^-1 (u, v)``.

    ``matrix`` (2x3) maps frame pixels to chip pixels. Only the frame region under the chip is
    touched; it is box-downscaled first when the chip is much smaller, to avoid aliasing.
    Bilinear sampling runs in Pillow on float channels (exact, no 8-bit rounding inside);
    outside the frame is black, blended like any other pixel.
    """
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]])
    source = corners @ inverse.T
    height, width = image.shape[:2]
    x0 = int(np.clip(np.floor(source[:, 0].min()) - 1, 0, width))
    y0 = int(np.clip(np.floor(source[:, 1].min()) - 1, 0, height))
    x1 = int(np.clip(np.ceil(source[:, 0].max()) + 2, 0, width))
    y1 = int(np.clip(np.ceil(source[:, 1].max()) + 2, 0, height))
    crop = image[y0:y1, x0:x1]
    factor = int(np.sqrt(abs(np.linalg.det(inverse[:, :2]))) + 1e-6)  # frame px per chip px
    if factor >= _ANTIALIAS_FROM and crop.shape[0] >= factor and crop.shape[1] >= factor:
        # Contiguous first: Pillow copies a strided view through a much slower tobytes().
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).reduce(factor))
    else:
        factor = 1
    # Float planes (one contiguous image per channel) with a black pixel around the crop, so
    # that samples at its edge blend towards black.
    planes = np.pad(np.moveaxis(crop, -1, 0).astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    # Crop pixel coordinates (pixel i of a k-times reduced image averages frame pixels
    # i*k .. i*k+k-1, so its centre is at i*k + (k-1)/2), shifted by the padding.
    to_crop = inverse / factor
    to_crop[:, 2] = (inverse[:, 2] - [x0, y0] - (factor - 1) / 2.0) / factor + 1.0
    # Pillow samples at pixel centres (+0.5 on both sides of the mapping).
    a, b, c = to_crop[0]
    d, e, f = to_crop[1]
    coefficients = (a, b, c + 0.5 - (a + b) / 2, d, e, f + 0.5 - (d + e) / 2)
    channels = [
        np.asarray(
            Image.fromarray(plane, mode="F").transform(
                (size, size), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR
            )
        )
        for plane in planes
    ]
    result: np.ndarray = np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
    return result


def alignment_matrix(keypoints: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Return the 2x3 frame-to-chip similarity for BlazeFace ``keypoints`` (6, 2)."""
    return similarity_transform(keypoints[list(ALIGN_KEYPOINTS)], TEMPLATE * (size / CHIP_SIZE))


def align_face(image: np.ndarray, keypoints: np.ndarray, size: int = CHIP_SIZE) -> np.ndarray:
    """Return the aligned (size, size, 3) uint8 RGB chip of the face with ``keypoints``."""
    return warp_affine(image, alignment_matrix(keypoints, size), size)

"""Face alignment: BlazeFace keypoints -> the chip framing an embedder was trained on.

Each embedder names its :class:`Alignment` in the pack (``config.alignment``):

- ``dlib_150``: a 150x150 chip framed like dlib's ``get_face_chip(img, shape, size=150,
  padding=0.25)`` (dlib's ResNet). Four BlazeFace keypoints (eyes, nose tip, mouth) map onto
  :data:`TEMPLATE`, the place they take on average in dlib's chips.
- ``arcface_112``: the standard 112x112 five-point ArcFace chip (SFace): eyes, nose tip and
  mouth corners. ``arcface_96``, ``_80``, ``_72``, ``_64`` and ``_56`` are the same framing in
  fewer pixels, for students that learned SFace's embedding from smaller chips (an embedder's
  time falls with its pixels). A face YuNet proposed carries YuNet's five points
  (``landmarks``), used as they are; otherwise (a close-up only BlazeFace saw) the corners are
  put at BlazeFace's mouth centre +- half the template's mouth width along the eye line.
  Measured with SFace on 3,000 dev pairs: 99.30 % with YuNet's corners, 99.40 % with the
  estimated ones (6 pairs apart).

Both fit a least-squares similarity transform (Umeyama) and warp with bilinear sampling in
Pillow (no OpenCV: it has no wheels for Home Assistant's musl images).

Stored enrollment chips use :data:`STORED`, a 224 px ArcFace framing with a margin that holds
both chips above (:func:`stored_chip`); the keypoints are stored with it in chip pixels, so
any alignment is cut from it later exactly as from the frame (the least-squares fit does not
depend on the similarity the keypoints went through), only resampled once more.
"""

from __future__ import annotations

from dataclasses import dataclass
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
# The ArcFace 112 px template (insightface): eyes, nose tip, mouth corners (image left first).
ARCFACE_TEMPLATE: Final = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
# Half the template's mouth width, in eye distances (0.414).
_HALF_MOUTH: Final = float(
    (ARCFACE_TEMPLATE[4, 0] - ARCFACE_TEMPLATE[3, 0])
    / (2 * (ARCFACE_TEMPLATE[1, 0] - ARCFACE_TEMPLATE[0, 0]))
)


def _dlib_points(keypoints: np.ndarray) -> np.ndarray:
    return np.asarray(keypoints[list(ALIGN_KEYPOINTS)], dtype=np.float64)


def arcface_points(keypoints: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
    """Return ArcFace's five points: YuNet's ``landmarks`` if any, else from BlazeFace's.

    YuNet's order is the template's (image-left eye first, mouth corners last).
    """
    if landmarks is not None:
        return np.asarray(landmarks, dtype=np.float64)
    eye_line = keypoints[LEFT_EYE] - keypoints[RIGHT_EYE]
    mouth = keypoints[MOUTH]
    points = [
        keypoints[RIGHT_EYE],
        keypoints[LEFT_EYE],
        keypoints[NOSE_TIP],
        mouth - _HALF_MOUTH * eye_line,
        mouth + _HALF_MOUTH * eye_line,
    ]
    return np.asarray(points, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)  # one object per framing: compared by identity
class Alignment:
    """A chip framing: which points of the face go where, in a size x size chip."""

    name: str
    size: int
    template: np.ndarray  # (N, 2) chip pixels of the points ``points`` returns

    def points(self, keypoints: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """Return the (N, 2) points this framing places.

        From BlazeFace's ``keypoints`` (>= 4, 2), and YuNet's ``landmarks`` (5, 2) when the
        face has them (five-point framings only).
        """
        if len(self.template) == 5:
            return arcface_points(keypoints, landmarks)
        return _dlib_points(keypoints)

    def matrix(self, keypoints: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """Return the 2x3 frame-to-chip similarity for a face's points."""
        return similarity_transform(self.points(keypoints, landmarks), self.template)


DLIB_150: Final = Alignment("dlib_150", CHIP_SIZE, TEMPLATE)
ARCFACE_112: Final = Alignment("arcface_112", 112, ARCFACE_TEMPLATE)


def arcface(size: int) -> Alignment:
    """Return the ArcFace framing in ``size`` px: the template scaled about pixel corners.

    Chip pixel centres are integers, so this chip shows the face where a 112 px chip
    box-resized to ``size`` shows it (not half a pixel off).
    """
    return Alignment(f"arcface_{size}", size, (ARCFACE_TEMPLATE + 0.5) * size / 112 - 0.5)


# 224 px = the ArcFace chip plus a margin of 16 ArcFace pixels all round (dlib's chip reaches
# 10 px below ArcFace's), eyes 55 px apart (dlib's chip: 57). Measured on 790 dev faces (JPEG
# quality 95, 14 kB): chips cut from it give embeddings within cosine 0.9994 (dlib) and 0.9967
# (SFace) of chips cut from the frame; 3,000 dev pairs 98.60 vs 98.70 % and 99.43 vs 99.40 %.
_STORED_SCALE: Final = 224 / (112 + 2 * 16)
STORED: Final = Alignment("stored_224", 224, (ARCFACE_TEMPLATE + 16) * _STORED_SCALE)
ALIGNMENTS: Final = {
    a.name: a for a in (DLIB_150, ARCFACE_112, *(arcface(s) for s in (96, 80, 72, 64, 56)))
}
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


def alignment_matrix(keypoints: np.ndarray, alignment: Alignment = DLIB_150) -> np.ndarray:
    """Return the 2x3 frame-to-chip similarity for BlazeFace ``keypoints`` (6, 2)."""
    return alignment.matrix(keypoints)


def align_face(
    image: np.ndarray,
    keypoints: np.ndarray,
    alignment: Alignment = DLIB_150,
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Return the aligned (size, size, 3) uint8 RGB chip of the face with these points."""
    return warp_affine(image, alignment.matrix(keypoints, landmarks), alignment.size)


def _moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return np.asarray(points @ matrix[:, :2].T + matrix[:, 2], dtype=np.float64)


def stored_chip(
    image: np.ndarray, keypoints: np.ndarray, landmarks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Return the :data:`STORED` chip of a face and its points moved into chip pixels.

    The chip is framed by the face's five ArcFace points; the keypoints (and landmarks, if
    any) come back in its pixels, so that every framing is cut from it as from the frame.
    """
    matrix = STORED.matrix(keypoints, landmarks)
    moved = None if landmarks is None else _moved(landmarks, matrix)
    return warp_affine(image, matrix, STORED.size), _moved(keypoints, matrix), moved

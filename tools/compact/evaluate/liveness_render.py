"""Frames for the liveness benchmark: a flat photo under perspective, and a turned head.

A printed photo held to the door camera is a plane: every frame of it is the photo seen
through one homography (the photo tilted or panned by an angle, turned in its plane, brought
closer or moved), then the camera's sensor noise and JPEG compression. A turned head is
rendered from one photo by a depth model (an ellipsoid head with a nose): each pixel moves
by its own depth, which no homography can do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from custom_components.compact_ai.engine.face.image import decode_image

FRAME_SIZE = (640, 480)  # width, height of a door camera's frame
FOCAL = 640.0  # pixels: a 53 degree horizontal field of view at 640 px
PAPER = (232, 230, 224)  # the print's margin around the face photo
WALL = (96, 100, 104)  # what the camera sees around the print
# BlazeFace's keypoints of the face in astronaut.png (right eye, left eye, nose, mouth, ears).
ASTRONAUT_KEYPOINTS = np.array(
    [[205.4, 102.3], [246.9, 105.1], [224.6, 127.9], [223.4, 147.4], [182.3, 109.8], [271.2, 115.2]]
)

Matrix = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PhotoPose:
    """Where a flat photo is: out-of-plane angle about an in-plane axis, roll, scale, shift."""

    tilt_deg: float  # angle between the photo's normal and the camera's axis
    axis_deg: float  # direction of the tilt axis in the photo plane (0: pan, 90: tilt)
    roll_deg: float = 0.0
    scale: float = 1.0  # image pixels per photo pixel at the photo's centre
    shift: tuple[float, float] = (0.0, 0.0)  # image pixels


def _rotation(axis: Matrix, angle: float) -> Matrix:
    """Rotation by ``angle`` radians about the unit ``axis`` (Rodrigues)."""
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    rotation: Matrix = np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
    return rotation


def pose_homography(pose: PhotoPose, photo_size: tuple[int, int]) -> Matrix:
    """Return the homography photo pixels -> frame pixels of a pinhole camera."""
    width, height = FRAME_SIZE
    camera = np.array([[FOCAL, 0, width / 2], [0, FOCAL, height / 2], [0, 0, 1]])
    direction = np.radians(pose.axis_deg)
    tilt = _rotation(
        np.array([np.cos(direction), np.sin(direction), 0.0]), np.radians(pose.tilt_deg)
    )
    rotation = _rotation(np.array([0.0, 0.0, 1.0]), np.radians(pose.roll_deg)) @ tilt
    distance = FOCAL / pose.scale  # photo pixels are the world unit
    translation = np.array([pose.shift[0] / pose.scale, pose.shift[1] / pose.scale, distance])
    centre = np.array([[1, 0, -photo_size[0] / 2], [0, 1, -photo_size[1] / 2], [0, 0, 1]])
    extrinsic = np.column_stack([rotation[:, 0], rotation[:, 1], translation])
    homography: Matrix = camera @ extrinsic @ centre
    return homography


def print_photo(face: Image.Image, height: int | None = None) -> Image.Image:
    """Return the photo in the middle of a print the size of a frame.

    ``height`` resizes the photo (a tight 112 px crop is too small for the detector as is);
    without it, only a photo larger than 3/4 of the frame is shrunk.
    """
    limit = (int(0.75 * FRAME_SIZE[0]), int(0.75 * FRAME_SIZE[1]))
    if height is not None:
        face = face.resize(
            (round(face.width * height / face.height), height), Image.Resampling.LANCZOS
        )
    elif face.width > limit[0] or face.height > limit[1]:
        face = face.copy()
        face.thumbnail(limit)
    sheet = Image.new("RGB", FRAME_SIZE, PAPER)
    sheet.paste(face, ((FRAME_SIZE[0] - face.width) // 2, (FRAME_SIZE[1] - face.height) // 2))
    return sheet


def warp(photo: Image.Image, homography: Matrix) -> Image.Image:
    """Return what the camera sees of ``photo`` placed by ``homography`` (bicubic)."""
    inverse = np.linalg.inv(homography)
    inverse /= inverse[2, 2]
    return photo.transform(
        FRAME_SIZE,
        Image.Transform.PERSPECTIVE,
        tuple(inverse.flatten()[:8]),
        Image.Resampling.BICUBIC,
        fillcolor=WALL,
    )


def camera_noise(
    frame: Image.Image, rng: np.random.Generator, quality: int, sigma: float = 2.0
) -> NDArray[np.uint8]:
    """Return the frame after sensor noise and a JPEG round trip, as the engine decodes it."""
    pixels = np.asarray(frame, dtype=np.float64) + rng.normal(0.0, sigma, (*frame.size[::-1], 3))
    noisy = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, format="JPEG", quality=quality)
    return decode_image(buffer.getvalue())


def random_pose(
    rng: np.random.Generator, max_tilt_deg: float = 35.0, min_tilt_deg: float = 0.0
) -> PhotoPose:
    """Return a pose of the benchmark's flat-photo family (angle uniform in min..max)."""
    return PhotoPose(
        tilt_deg=float(rng.uniform(min_tilt_deg, max_tilt_deg)),
        axis_deg=float(rng.uniform(0.0, 360.0)),
        roll_deg=float(rng.uniform(-15.0, 15.0)),
        scale=float(np.exp(rng.uniform(np.log(0.8), np.log(1.25)))),
        shift=(float(rng.uniform(-40, 40)), float(rng.uniform(-30, 30))),
    )


def _remap_rows(image: NDArray[np.uint8], moved: Matrix) -> NDArray[np.uint8]:
    """Move each pixel along its row by ``moved``; a monotone map folds occluded parts away."""
    height, width = image.shape[:2]
    target = np.maximum.accumulate(np.arange(width, dtype=np.float64) + moved, axis=1)
    columns = np.arange(width, dtype=np.float64)
    out = np.empty_like(image)
    for row in range(height):
        source = np.interp(columns, target[row], columns)
        for channel in range(image.shape[2]):
            out[row, :, channel] = np.rint(np.interp(source, columns, image[row, :, channel]))
    return out


def turn_head(
    image: NDArray[np.uint8], keypoints: Matrix, yaw_deg: float, pitch_deg: float = 0.0
) -> NDArray[np.uint8]:
    """Return ``image`` with the head at ``keypoints`` turned (yaw) and nodded (pitch).

    Orthographic, about the head's centre. The head is an ellipsoid through the ears with a
    nose bump; the background stays. Each turn remaps rows (then columns) monotonically.
    """
    eyes, nose, ears = keypoints[:2], keypoints[2], keypoints[4:6]
    spacing = float(np.linalg.norm(eyes[0] - eyes[1]))
    half_width = 0.6 * abs(float(ears[0, 0] - ears[1, 0])) + 0.2 * spacing
    centre = (float(ears[:, 0].mean()), float(eyes[:, 1].mean()) + 0.35 * spacing)
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    dx, dy = (xs - centre[0]) / half_width, (ys - centre[1]) / (1.45 * half_width)
    radius = np.sqrt(dx**2 + dy**2)
    depth = half_width * np.sqrt(np.clip(1.0 - radius**2, 0.0, None))
    nose_sigma = 0.3 * spacing
    depth += (
        0.35 * spacing * np.exp(-((xs - nose[0]) ** 2 + (ys - nose[1]) ** 2) / (2 * nose_sigma**2))
    )
    inside = np.clip((1.3 - radius) / 0.3, 0.0, 1.0)  # the background stays in place
    out = image
    for angle, along, offset, axes in (
        (pitch_deg, ys, centre[1], (1, 0, 2)),
        (yaw_deg, xs, centre[0], (0, 1, 2)),
    ):
        if angle:
            turn = np.radians(angle)
            moved = ((along - offset) * (np.cos(turn) - 1.0) + depth * np.sin(turn)) * inside
            out = _remap_rows(out.transpose(axes), moved.transpose(axes[:2])).transpose(axes)
    return np.ascontiguousarray(out)

"""Liveness: exact geometry of flat and 3-D keypoints; a real print under perspective."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from custom_components.compact_ai.engine.door.liveness import (
    affine_residual,
    apply_homography,
    fit_homography,
    homography_residual,
    planar_parallax,
    similarity_residual,
)
from custom_components.compact_ai.engine.door.policy import (
    FaceObservation,
    Frame,
    Reason,
    UnlockDecider,
    UnlockPolicy,
)
from custom_components.compact_ai.engine.face.pipeline import FacePipeline
from tools.compact.evaluate.liveness_render import (
    PhotoPose,
    camera_noise,
    pose_homography,
    print_photo,
    warp,
)
from tools.compact.pack.sources import source_path

from .head_model import FLAT, HEAD, project


def random_homography(rng: np.random.Generator) -> np.ndarray:
    """A strong but proper homography: rotation, scale, shear and perspective."""
    homography = np.eye(3) + rng.normal(0.0, 0.2, (3, 3))
    homography[2, :2] = rng.normal(0.0, 0.002, 2)  # strong perspective at this pixel scale
    homography[:2, 2] = rng.normal(0.0, 30.0, 2)
    return homography


@pytest.mark.parametrize("seed", range(20))
def test_flat_keypoints_under_any_homography_score_zero(seed: int) -> None:
    rng = np.random.default_rng(seed)
    flat = project(FLAT, 0.0)
    moved = apply_homography(random_homography(rng), flat)
    assert planar_parallax(flat, moved) == pytest.approx(0.0, abs=1e-9)


def test_only_the_homography_explains_a_tilted_photo() -> None:
    flat = project(FLAT, 0.0)
    tilted = project(FLAT, 35.0)  # the print turned 35 degrees: perspective
    assert homography_residual(flat, tilted) == pytest.approx(0.0, abs=1e-9)
    assert affine_residual(flat, tilted) > 1e-3
    assert similarity_residual(flat, tilted) > affine_residual(flat, tilted)


@pytest.mark.parametrize(("yaw", "pitch"), [(15.0, 0.0), (-15.0, 0.0), (0.0, 10.0), (20.0, 10.0)])
def test_a_head_turned_in_depth_is_not_flat(yaw: float, pitch: float) -> None:
    front, turned = project(HEAD, 0.0), project(HEAD, yaw, pitch)
    assert planar_parallax(front, turned) > 0.035
    assert planar_parallax(turned, front) == pytest.approx(planar_parallax(front, turned))


def test_degenerate_keypoints_score_zero() -> None:
    line = np.column_stack([np.arange(6.0), np.arange(6.0)])
    assert fit_homography(line, line) is None
    assert planar_parallax(line, project(HEAD, 10.0)) == 0.0
    assert affine_residual(line, line) == 0.0
    assert similarity_residual(np.zeros((6, 2)), line) == 0.0
    assert homography_residual(line[:4], line[:4]) == 0.0  # 4 points always fit


# --- the real detector on a real photo --------------------------------------------------

# Tilt/pan (angle about an in-plane axis), with roll, zoom and shift as a hand would add them.
FLAT_POSES = [
    PhotoPose(angle, axis, roll, scale, shift)
    for angle, axis, roll, scale, shift in [
        (0.0, 0.0, 0.0, 1.0, (0.5, -0.3)),
        (10.0, 0.0, 5.0, 1.1, (20.0, 0.0)),
        (20.0, 90.0, -8.0, 0.9, (-25.0, 10.0)),
        (22.0, 30.0, 0.0, 1.25, (0.0, 15.0)),
        (25.0, 0.0, 12.0, 1.0, (10.0, -20.0)),
        (30.0, 135.0, -4.0, 0.8, (30.0, 20.0)),
        (35.0, 0.0, 0.0, 1.0, (0.0, 0.0)),
        (35.0, 90.0, 10.0, 1.15, (-20.0, -10.0)),
    ]
]
PHOTOS = [("astronaut.png", None), ("Tom_Hanks_54745.png", 224)]  # name, printed height


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    pytest.importorskip("onnxruntime")
    from tools.compact.evaluate.liveness import load_pipeline

    return load_pipeline("balanced", None, "onnxruntime")  # what Home Assistant runs


def keypoints_of(pipeline: FacePipeline, frame: np.ndarray) -> np.ndarray:
    from tools.compact.evaluate.liveness import keypoints

    found = keypoints(pipeline, frame)
    assert found is not None, "the detector must see the printed face"
    return found


def door_decision(first: np.ndarray, second: np.ndarray) -> Reason:
    """The shipped policy's decision on two frames of an authorized face."""
    decider = UnlockDecider(UnlockPolicy(frozenset({"door"}), frozenset({"alice"}), 0.45))
    for time, points in enumerate((first, second)):
        face = FaceObservation("alice", 0.3, False, points)
        decision = decider.observe(Frame("door", float(time), (face,)))
    assert decision is not None
    return decision.reason


@pytest.mark.parametrize(("name", "height"), PHOTOS)
def test_a_printed_photo_under_perspective_is_refused(
    pipeline: FacePipeline, name: str, height: int | None
) -> None:
    rng = np.random.default_rng(7)
    sheet = print_photo(Image.open(source_path(name)).convert("RGB"), height)
    reference = camera_noise(warp(sheet, pose_homography(PhotoPose(0.0, 0.0), sheet.size)), rng, 85)
    front = keypoints_of(pipeline, reference)
    granted = []
    for index, pose in enumerate(FLAT_POSES):
        quality = 70 + 20 * index // len(FLAT_POSES)
        frame = camera_noise(warp(sheet, pose_homography(pose, sheet.size)), rng, quality)
        reason = door_decision(front, keypoints_of(pipeline, frame))
        if reason is not Reason.STATIC_FACE:
            granted.append((pose.tilt_deg, reason.value))
    assert not granted, f"flat photo passed liveness at {granted}"

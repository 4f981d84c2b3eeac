"""Chip framings: dlib's and ArcFace's geometry, and chips cut again from a stored chip."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.compact_ai.engine.errors import ManifestError
from custom_components.compact_ai.engine.face import detector as fd
from custom_components.compact_ai.engine.face.align import (
    ALIGN_KEYPOINTS,
    ALIGNMENTS,
    ARCFACE_112,
    ARCFACE_TEMPLATE,
    DLIB_150,
    STORED,
    Alignment,
    align_face,
    arcface_points,
    stored_chip,
)
from custom_components.compact_ai.engine.face.image import decode_image
from custom_components.compact_ai.engine.face.pipeline import embedder_config
from tools.compact.pack.sources import source_path


def _moved(points: np.ndarray, angle: float, scale: float, shift: tuple[float, ...]) -> np.ndarray:
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T * scale + np.asarray(shift)


def _blazeface_of_arcface_face(angle: float, scale: float, shift: tuple[float, ...]) -> np.ndarray:
    """BlazeFace's six keypoints of a face shaped exactly like the ArcFace template."""
    mouth = ARCFACE_TEMPLATE[3:].mean(axis=0)
    ears = [[10.0, 60.0], [102.0, 60.0]]
    six = np.vstack([ARCFACE_TEMPLATE[:3], mouth, ears])
    return _moved(six, angle, scale, shift)


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (0.4, 2.5), (-0.3, 0.6)])
def test_arcface_alignment_puts_a_template_face_on_the_template(angle: float, scale: float) -> None:
    keypoints = _blazeface_of_arcface_face(angle, scale, (300.0, 200.0))
    matrix = ARCFACE_112.matrix(keypoints)
    mapped = arcface_points(keypoints) @ matrix[:, :2].T + matrix[:, 2]
    # the mouth corners are estimated from the eye line; the template's are 0.1 px off it
    assert np.abs(mapped - ARCFACE_TEMPLATE).max() < 0.15
    assert np.linalg.det(matrix[:, :2]) == pytest.approx(1 / scale**2, rel=1e-3)


def test_mouth_corners_lie_on_the_eye_line_through_the_mouth() -> None:
    keypoints = _blazeface_of_arcface_face(0.5, 3.0, (0.0, 0.0))
    five = arcface_points(keypoints)
    eye_line = five[1] - five[0]
    corner_line = five[4] - five[3]
    cross = eye_line[0] * corner_line[1] - eye_line[1] * corner_line[0]
    assert cross == pytest.approx(0.0, abs=1e-9)
    assert np.linalg.norm(corner_line) / np.linalg.norm(eye_line) == pytest.approx(0.828, abs=1e-3)
    np.testing.assert_allclose((five[3] + five[4]) / 2, keypoints[fd.MOUTH])


def test_each_framing_has_its_size_and_keeps_dlib_template() -> None:
    keypoints = _blazeface_of_arcface_face(0.1, 2.0, (320.0, 240.0))
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert align_face(image, keypoints).shape == (150, 150, 3)
    assert align_face(image, keypoints, ARCFACE_112).shape == (112, 112, 3)
    chip, points, landmarks = stored_chip(image, keypoints)
    assert chip.shape == (224, 224, 3) and landmarks is None
    # the stored chip's own keypoints sit where STORED puts them
    np.testing.assert_allclose(STORED.matrix(points)[:, :2], np.eye(2), atol=1e-9)
    # the 4-point dlib fit only reads eyes, nose tip and mouth
    np.testing.assert_allclose(
        DLIB_150.matrix(keypoints), DLIB_150.matrix(keypoints[list(ALIGN_KEYPOINTS)])
    )


@pytest.mark.parametrize("alignment", [DLIB_150, ARCFACE_112])
def test_chips_cut_from_the_stored_chip_equal_chips_cut_from_the_frame(
    alignment: Alignment,
) -> None:
    from tools.compact.evaluate.verify import load_face_pipeline

    pytest.importorskip("onnxruntime")
    image = decode_image(source_path("astronaut.png").read_bytes())
    pipeline, _ = load_face_pipeline("reference", None, "onnxruntime")
    (detection,) = pipeline.detect(image)
    direct = align_face(image, detection.keypoints, alignment).astype(float)
    chip, points, _ = stored_chip(image, detection.keypoints)
    again = align_face(chip, points[list(ALIGN_KEYPOINTS)], alignment).astype(float)
    assert np.abs(again - direct).mean() < 4  # one more bilinear resampling
    assert np.corrcoef(again.ravel(), direct.ravel())[0, 1] > 0.98


@pytest.mark.parametrize(("angle", "scale"), [(0.0, 1.0), (0.7, 2.0), (-0.2, 0.5)])
def test_yunet_landmarks_frame_arcface_chips_and_leave_dlib_chips_alone(
    angle: float, scale: float
) -> None:
    """YuNet's five points (mouth corners detected) go exactly onto ArcFace's template."""
    shift = (200.0, 150.0)
    landmarks = _moved(ARCFACE_TEMPLATE, angle, scale, shift)
    # BlazeFace's mouth lower than YuNet's corners: the estimate would tilt the chip
    keypoints = _blazeface_of_arcface_face(angle, scale, shift)
    keypoints[fd.MOUTH] += _moved(np.array([[0.0, 6.0]]), angle, scale, (0.0, 0.0))[0]
    matrix = ARCFACE_112.matrix(keypoints, landmarks)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE, atol=1e-6)
    assert np.abs(ARCFACE_112.matrix(keypoints) - matrix).max() > 0.01
    np.testing.assert_array_equal(DLIB_150.matrix(keypoints, landmarks), DLIB_150.matrix(keypoints))
    image = decode_image(source_path("astronaut.png").read_bytes())
    chip, points, moved = stored_chip(image, keypoints, landmarks)
    assert moved is not None
    # the stored chip is framed by YuNet's points, which land on STORED's template
    np.testing.assert_allclose(moved, STORED.template, atol=1e-6)
    direct = align_face(image, keypoints, ARCFACE_112, landmarks).astype(float)
    again = align_face(chip, points, ARCFACE_112, moved).astype(float)
    assert np.abs(again - direct).mean() < 4  # one more bilinear resampling
    assert np.corrcoef(again.ravel(), direct.ravel())[0, 1] > 0.98


def test_embedder_config_names_a_known_alignment_of_the_right_size() -> None:
    sface = {"alignment": "arcface_112", "normalize": True, "inputs": [{"shape": [1, 3, 112, 112]}]}
    config = embedder_config(sface)
    assert config.alignment is ARCFACE_112 and config.normalize
    assert embedder_config({}).alignment is DLIB_150
    with pytest.raises(ManifestError, match="unknown face alignment"):
        embedder_config({"alignment": "mtcnn_96"})
    with pytest.raises(ManifestError, match="makes 112 px chips"):
        embedder_config({"alignment": "arcface_112", "inputs": [{"shape": [1, 3, 150, 150]}]})
    student = {"alignment": "arcface_80", "inputs": [{"shape": [1, 3, 80, 80]}]}
    assert embedder_config(student).alignment is ALIGNMENTS["arcface_80"]
    with pytest.raises(ManifestError, match="makes 64 px chips"):
        embedder_config({"alignment": "arcface_64", "inputs": [{"shape": [1, 3, 112, 112]}]})


@pytest.mark.parametrize("size", [96, 80, 72, 64, 56])
def test_a_smaller_arcface_chip_is_the_112_px_chip_in_fewer_pixels(size: int) -> None:
    """Distillation teaches a small student on 112 px chips box-resized: the engine's own cut
    must be that picture, not one shifted by half a pixel."""
    from PIL import Image

    image = decode_image(source_path("astronaut.png").read_bytes())
    # One frame pixel per 112 px chip pixel: there both cuts see the same pixels, so what is left
    # is the filters' difference (bilinear against box); from a larger face the direct cut is
    # sharper than the box-resized one, and distillation trains on the direct cut.
    keypoints = _blazeface_of_arcface_face(0.2, 1.0, (260.0, 190.0))
    alignment = ALIGNMENTS[f"arcface_{size}"]
    assert alignment.size == size
    big = align_face(image, keypoints, ARCFACE_112)
    resized = np.asarray(Image.fromarray(big).resize((size, size), Image.Resampling.BOX), float)
    small = align_face(image, keypoints, alignment).astype(float)
    assert np.abs(small - resized).mean() < 3  # 1.8-2.5 of 255: bilinear against box
    assert np.corrcoef(small.ravel(), resized.ravel())[0, 1] > 0.997
    # half a pixel off would show: the same comparison with the template not centred is worse
    naive = Alignment("naive", size, ARCFACE_TEMPLATE * size / 112)
    shifted = align_face(image, keypoints, naive).astype(float)
    assert np.abs(small - resized).mean() < np.abs(shifted - resized).mean()

"""The face pipeline on real models and photos, and its model-free parts on known values."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from custom_components.compact_ai.engine.errors import ImageDecodeError, ManifestError
from custom_components.compact_ai.engine.face import detector as fd
from custom_components.compact_ai.engine.face.align import (
    TEMPLATE,
    align_face,
    alignment_matrix,
    similarity_transform,
    warp_affine,
)
from custom_components.compact_ai.engine.face.image import decode_image
from custom_components.compact_ai.engine.face.pipeline import FacePipeline, detector_config
from custom_components.compact_ai.engine.face.quality import assess, laplacian_variance
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def pipelines() -> dict[str, FacePipeline]:
    from tools.compact.evaluate.verify import load_face_pipeline

    variants = (*fd.VARIANTS, "cascade")  # each BlazeFace alone, and the tier's detection
    return {v: load_face_pipeline("reference", None, "onnxruntime", v)[0] for v in variants}


def _photo(name: str) -> np.ndarray:
    return decode_image(source_path(name).read_bytes())


# --- anchors, letterbox, decoding, NMS -------------------------------------------------


def test_anchor_counts_and_layout_follow_mediapipe() -> None:
    short = fd.ssd_anchors(fd.SHORT_RANGE)
    assert short.shape == (896, 2)
    # stride 8: 16x16 cells, 2 anchors each (aspect 1.0 + interpolated), row-major from (0, 0)
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[32], [0.5 / 16, 1.5 / 16])
    # three stride-16 layers share one 8x8 map: 6 anchors per cell
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[518], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    full = fd.ssd_anchors(fd.FULL_RANGE)
    assert full.shape == (2304, 2)  # 48x48 cells, no interpolated anchor
    np.testing.assert_allclose(full[1], [1.5 / 48, 0.5 / 48])


def test_letterbox_keeps_aspect_and_maps_back() -> None:
    image = np.full((100, 200, 3), 255, dtype=np.uint8)
    tensor, box = fd.letterbox(image, 128)
    assert tensor.shape == (1, 128, 128, 3)
    assert tensor.dtype == np.float32
    assert tensor.min() == -1.0  # black border
    assert tensor.max() == 1.0  # white picture
    assert np.all(tensor[0, :32] == -1.0)  # 100/200*128 = 64 rows of picture, centred
    assert np.all(tensor[0, 32:96] == 1.0)
    corners = np.array([[0.0, 32 / 128], [1.0, 96 / 128]])
    np.testing.assert_allclose(box.to_frame(corners), [[0, 0], [200, 100]])


def test_decode_places_boxes_and_keypoints_on_anchors() -> None:
    config = fd.SHORT_RANGE
    anchors = fd.ssd_anchors(config)
    regressors = np.zeros((1, 896, 16), dtype=np.float32)
    logits = np.full((1, 896, 1), -10.0, dtype=np.float32)
    logits[0, 600] = 3.0
    regressors[0, 600, :4] = [12.8, -6.4, 32.0, 64.0]  # shift x +0.1, y -0.05; w 0.25, h 0.5
    regressors[0, 600, 4:6] = [1.28, 0.0]  # right eye 0.01 right of the anchor
    boxes, points, scores = fd.decode(regressors, logits, anchors, config)
    assert scores == pytest.approx([1 / (1 + np.exp(-3.0))])
    x, y = anchors[600] + [0.1, -0.05]
    np.testing.assert_allclose(boxes[0], [x - 0.125, y - 0.25, x + 0.125, y + 0.25])
    np.testing.assert_allclose(points[0, 0], anchors[600] + [0.01, 0.0])
    np.testing.assert_allclose(points[0, 1:], np.repeat(anchors[600:601], 5, axis=0))


def test_scores_are_clipped_before_the_sigmoid() -> None:
    config = fd.SHORT_RANGE
    anchors = fd.ssd_anchors(config)
    logits = np.full((1, 896, 1), -1e30, dtype=np.float32)  # no overflow warning, score 0
    with np.errstate(over="raise"):
        _, _, scores = fd.decode(np.zeros((1, 896, 16)), logits, anchors, config)
    assert scores.size == 0


def test_weighted_nms_merges_a_cluster_and_keeps_separate_faces() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    points = np.stack([np.full((6, 2), v) for v in (0.0, 3.0, 55.0)])
    scores = np.array([0.9, 0.6, 0.8])
    out_boxes, out_points, out_scores = fd.weighted_nms(boxes, points, scores, 0.3)
    assert out_scores.tolist() == [0.9, 0.8]
    np.testing.assert_allclose(out_boxes[0], [0.4, 0, 10.4, 10])  # (0*.9 + 1*.6) / 1.5
    np.testing.assert_allclose(out_points[0], np.full((6, 2), 1.2))
    np.testing.assert_allclose(out_boxes[1], boxes[2])


def test_weighted_nms_of_nothing_is_empty() -> None:
    boxes, points, scores = fd.weighted_nms(np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0), 0.3)
    assert boxes.shape == (0, 4)
    assert points.shape == (0, 6, 2)
    assert scores.shape == (0,)


def test_detector_config_from_pack_entry() -> None:
    assert detector_config({"variant": "full", "input_size": 192}) is fd.FULL_RANGE
    assert detector_config({}) is fd.SHORT_RANGE
    with pytest.raises(ManifestError, match="unknown"):
        detector_config({"variant": "back"})
    with pytest.raises(ManifestError, match="128 px"):
        detector_config({"variant": "short", "input_size": 192})


# --- alignment --------------------------------------------------------------------------


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.array([[0, 0], [10, 0], [3, 7], [6, 12]], dtype=float)
    dst = src @ (scale * rotation).T + shift
    np.testing.assert_allclose(
        similarity_transform(src, dst), np.hstack([scale * rotation, shift[:, None]]), atol=1e-9
    )


def test_warp_with_a_shift_copies_pixels_and_zero_fills_outside() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    chip = warp_affine(image, np.array([[1.0, 0, -5], [0, 1.0, -3]]), 10)
    np.testing.assert_array_equal(chip, image[3:13, 5:15])
    outside = warp_affine(image, np.array([[1.0, 0, 5], [0, 1.0, 0]]), 10)
    assert np.all(outside[:, :5] == 0)  # frame columns -5..-1 do not exist
    np.testing.assert_array_equal(outside[:, 5:], image[:10, :5])


def test_warp_samples_bilinearly_at_the_mapped_point() -> None:
    # Bilinear sampling reproduces a linear ramp exactly, so every chip pixel (u, v) must
    # hold the ramp's value at matrix^-1 (u, v), also under rotation, scale and a half-pixel
    # shift; half a pixel off would show as an error of 2.5 grey levels or more.
    ys, xs = np.mgrid[0:60, 0:80]
    ramp = np.repeat((2 * xs + ys)[:, :, None], 3, axis=2).astype(np.uint8)
    angle, scale = 0.3, 1.3
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.hstack([rotation, [[-20.5], [-15.0]]])
    chip = warp_affine(ramp, matrix, 24).astype(float)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    vs, us = np.mgrid[0:24, 0:24]
    frame_x = inverse[0, 0] * us + inverse[0, 1] * vs + inverse[0, 2]
    frame_y = inverse[1, 0] * us + inverse[1, 1] * vs + inverse[1, 2]
    inside = (frame_x >= 0) & (frame_x <= 79) & (frame_y >= 0) & (frame_y <= 59)
    assert inside.sum() > 200
    expected = 2.0 * frame_x + frame_y
    assert np.abs(chip[inside][:, 0] - expected[inside]).max() <= 0.5 + 1e-6


def test_warp_of_a_large_frame_is_antialiased() -> None:
    stripes = np.zeros((600, 600, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # 1-pixel stripes: point sampling at 4x would alias to 0 or 255
    chip = warp_affine(stripes, np.array([[0.25, 0, 0], [0, 0.25, 0]]), 150)
    assert np.abs(chip[10:-10, 10:-10].astype(float) - 127.5).max() < 2


def test_alignment_puts_keypoints_on_the_template() -> None:
    keypoints = np.array([[200, 220], [260, 215], [232, 250], [231, 280], [180, 230], [290, 228]])
    matrix = alignment_matrix(keypoints.astype(float))
    mapped = keypoints[:4] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(mapped - TEMPLATE).max() < 6


# --- the whole pipeline on real photos ----------------------------------------------


def test_astronaut_has_one_frontal_face(pipelines: dict[str, FacePipeline]) -> None:
    for pipeline in pipelines.values():
        (face,) = pipeline.faces(_photo("astronaut.png"))
        x0, y0, x1, y1 = face.detection.box
        assert 165 < x0 < 190 and 60 < y0 < 95 and 260 < x1 < 290 and 165 < y1 < 190
        assert face.detection.score > 0.8
        points = face.detection.keypoints
        assert points[fd.RIGHT_EYE, 0] < points[fd.NOSE_TIP, 0] < points[fd.LEFT_EYE, 0]
        assert points[fd.RIGHT_EYE, 1] < points[fd.NOSE_TIP, 1] < points[fd.MOUTH, 1]
        assert face.embedding.shape == (128,)
        assert face.embedding.dtype == np.float32
        assert 30 < face.quality.eye_distance < 60
        assert face.quality.frontalness > 0.7


def test_group_photo_full_range_finds_every_face(pipelines: dict[str, FacePipeline]) -> None:
    image = _photo("t1.jpg")
    faces = pipelines["full"].faces(image)
    assert len(faces) == 6
    embeddings = np.stack([face.embedding for face in faces])
    distances = np.linalg.norm(embeddings[:, None] - embeddings[None], axis=2)
    assert distances[~np.eye(6, dtype=bool)].min() > 0.5  # six different people
    # The short range model is for near faces: these ~100 px faces in 1280 px are too small.
    assert len(pipelines["short"].detect(image)) < 6


def test_the_cascade_finds_near_and_far_faces(pipelines: dict[str, FacePipeline]) -> None:
    cascade = pipelines["cascade"]
    group = _photo("t1.jpg")
    assert len(cascade.detect(group)) == len(pipelines["full"].detect(group)) == 6
    close_up = _photo("Tom_Hanks_54745.png")  # a 112 px crop only the short range model finds
    assert pipelines["full"].detect(close_up) == []
    assert len(cascade.detect(close_up)) == len(pipelines["short"].detect(close_up)) == 1
    (astronaut,) = cascade.detect(_photo("astronaut.png"))  # the same face, merged once
    assert astronaut.landmarks is not None and astronaut.landmarks.shape == (5, 2)


@pytest.mark.parametrize("name", ["coffee.png", "chelsea.png"])
def test_no_human_face(pipelines: dict[str, FacePipeline], name: str) -> None:
    for pipeline in pipelines.values():
        assert pipeline.faces(_photo(name)) == []


def test_same_person_is_close_and_different_people_are_far(
    pipelines: dict[str, FacePipeline],
) -> None:
    pipeline = pipelines["short"]
    hanks = _photo("Tom_Hanks_54745.png")  # a tight 112 px crop: upscale it into a frame
    frame = np.asarray(Image.fromarray(hanks).resize((336, 336), Image.Resampling.BICUBIC))
    (face,) = pipeline.faces(np.pad(frame, ((80, 80), (80, 80), (0, 0))))
    (mirrored,) = pipeline.faces(np.pad(frame[:, ::-1], ((80, 80), (80, 80), (0, 0))))
    (astronaut,) = pipeline.faces(_photo("astronaut.png"))
    assert np.linalg.norm(face.embedding - mirrored.embedding) < 0.45
    assert np.linalg.norm(face.embedding - astronaut.embedding) > 0.6


def test_exif_rotated_copy_finds_the_same_face(pipelines: dict[str, FacePipeline]) -> None:
    pipeline = pipelines["short"]
    original = Image.open(source_path("astronaut.png")).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90° counter-clockwise; viewers turn it back
    buffer = io.BytesIO()
    original.transpose(Image.Transpose.ROTATE_90).save(
        buffer, "JPEG", quality=95, exif=exif.tobytes()
    )
    (rotated,) = pipeline.faces_in_bytes(buffer.getvalue())
    (upright,) = pipeline.faces(np.asarray(original))
    np.testing.assert_allclose(rotated.detection.box, upright.detection.box, atol=4)
    assert np.linalg.norm(rotated.embedding - upright.embedding) < 0.2


def test_bad_bytes_raise_a_decode_error(pipelines: dict[str, FacePipeline]) -> None:
    with pytest.raises(ImageDecodeError):
        pipelines["short"].faces_in_bytes(b"\x89PNG\r\n\x1a\n broken")


def test_max_faces_keeps_the_best(pipelines: dict[str, FacePipeline]) -> None:
    full = pipelines["full"]
    limited = FacePipeline(full.detector, full.embedder, full.config, max_faces=2)
    image = _photo("t1.jpg")
    best = sorted(d.score for d in full.detect(image))[-2:]
    assert sorted(d.score for d in limited.detect(image)) == best


# --- quality ------------------------------------------------------------------------


def test_blur_lowers_sharpness(pipelines: dict[str, FacePipeline]) -> None:
    image = _photo("astronaut.png")
    (detection,) = pipelines["short"].detect(image)
    chip = align_face(image, detection.keypoints)
    blurred = np.asarray(Image.fromarray(chip).filter(ImageFilter.GaussianBlur(2)))
    assert laplacian_variance(blurred) < laplacian_variance(chip) / 4
    assert laplacian_variance(np.full((150, 150, 3), 90, dtype=np.uint8)) == 0.0


def test_frontalness_falls_with_a_turned_head() -> None:
    frontal = fd.Detection(
        box=(0, 0, 100, 100),
        keypoints=np.array([[30, 40], [70, 40], [50, 60], [50, 80], [10, 45], [90, 45]], float),
        score=0.9,
    )
    turned = fd.Detection(
        box=(0, 0, 100, 100),
        keypoints=np.array([[40, 40], [70, 40], [66, 60], [62, 80], [22, 45], [80, 45]], float),
        score=0.9,
    )
    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    straight, side = assess(frontal, chip), assess(turned, chip)
    assert straight.frontalness == pytest.approx(1.0)
    assert straight.nose_offset == pytest.approx(0.0)
    assert straight.eye_distance == pytest.approx(40.0)
    assert straight.box_width == 100
    assert side.nose_offset > 0.3
    assert side.ear_asymmetry > 0  # the right ear is farther from its eye than the left
    assert side.frontalness < 0.4

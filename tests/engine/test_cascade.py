"""The face cascade on real models: small faces in large frames, geometry in frame pixels.

Frames are made here from a shipped sample photo (the astronaut's head, scaled and pasted into
a plain or textured scene), so the true place of the face is known.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from custom_components.compact_ai.const import PACK_DIR
from custom_components.compact_ai.engine.errors import ManifestError
from custom_components.compact_ai.engine.face import cascade as cascade_module
from custom_components.compact_ai.engine.face.cascade import (
    MAX_REFINES,
    DetectionConfig,
    near,
    same_face,
    surrounds,
)
from custom_components.compact_ai.engine.face.detector import LEFT_EYE, RIGHT_EYE, SHORT_RANGE
from custom_components.compact_ai.engine.face.image import (
    RESAMPLERS,
    Picture,
    decode_picture,
    shrink,
)
from custom_components.compact_ai.engine.face.pipeline import FacePipeline, embedder_config
from custom_components.compact_ai.engine.face.recognizer import FaceRecognizer
from custom_components.compact_ai.engine.runtime.backend import InferenceModel, load_model
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tools.compact.pack.sources import source_path

pytest.importorskip("onnxruntime")
PACK = ModelPack.load(PACK_DIR)
HEAD = (120, 20, 340, 240)  # the astronaut's head in astronaut.png: face about 110 px wide
FACE_IN_HEAD = 110 / 220


@pytest.fixture(scope="module")
def head() -> Image.Image:
    return Image.open(source_path("astronaut.png")).convert("RGB").crop(HEAD)


@pytest.fixture(scope="module")
def models() -> dict[str, InferenceModel]:
    return {
        task: load_model(PACK, PACK.model("balanced", task), "onnxruntime")
        for task in ("face_detector", "face_proposer", "face_embedder")
    }


def pipeline(models: dict[str, InferenceModel], **detection: object) -> FacePipeline:
    return FacePipeline(
        models["face_detector"],
        models["face_embedder"],
        SHORT_RANGE,
        proposer=models["face_proposer"],
        detection=DetectionConfig(**detection),  # type: ignore[arg-type]
        embedding=embedder_config(PACK.model("balanced", "face_embedder").config),
    )


def scene(
    head: Image.Image,
    face_width: int,
    at: tuple[int, int],
    size: tuple[int, int] = (1920, 1080),
    background: tuple[int, int, int] = (96, 110, 120),
) -> Image.Image:
    """A plain frame with the head pasted so that its face is ``face_width`` px wide."""
    side = round(face_width / FACE_IN_HEAD)
    frame = Image.new("RGB", size, background)
    frame.paste(head.resize((side, side), Image.Resampling.LANCZOS), at)
    return frame


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("scale", [(0.5, 0.5), (0.25, 0.5), (2.0, 1.0)])
def test_frame_coordinates_follow_the_picture_scale_exactly(
    head: Image.Image, models: dict[str, InferenceModel], scale: tuple[float, float]
) -> None:
    """The same pixels said to be a frame at another scale: every point scales exactly."""
    cascade = pipeline(models).cascade
    pixels = decode_picture(encode(scene(head, 96, (400, 300))), 960 * 540).pixels
    size = (pixels.shape[1], pixels.shape[0])
    (plain,) = cascade.find(Picture(pixels, (1.0, 1.0), size)).detections
    frame = (round(size[0] / scale[0]), round(size[1] / scale[1]))
    (scaled,) = cascade.find(Picture(pixels, scale, frame)).detections
    factor = np.asarray(scale)
    np.testing.assert_allclose(scaled.keypoints * factor, plain.keypoints, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(scaled.box) * np.tile(factor, 2), plain.box, rtol=1e-12)
    assert scaled.landmarks is not None and plain.landmarks is not None
    np.testing.assert_allclose(scaled.landmarks * factor, plain.landmarks, rtol=1e-12)


def test_a_moved_face_moves_its_keypoints(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    """Moved by 64 frame px (one YuNet cell at 1/2): keypoints follow within a picture pixel."""
    cascade = pipeline(models, detect_pixels=640 * 360, align_pixels=640 * 360).cascade
    found = []
    for at in ((400, 300), (464, 332)):
        picture = decode_picture(encode(scene(head, 96, at, (1280, 720)), "PNG"), 640 * 360)
        assert picture.scale == (0.5, 0.5)
        (detection,) = cascade.find(picture).detections
        found.append(detection)
    first, second = found
    shift = np.array([64.0, 32.0])
    np.testing.assert_allclose(second.keypoints, first.keypoints + shift, atol=2.0)
    assert first.landmarks is not None and second.landmarks is not None
    np.testing.assert_allclose(second.landmarks, first.landmarks + shift, atol=2.0)


def test_keypoints_land_where_the_face_was_pasted(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    """The close-up's keypoints, moved and scaled as the paste did, within 3 % of the face."""
    alone = pipeline(models)
    (close_up,) = alone.detect(np.asarray(head))
    at, face = np.array([1210.0, 410.0]), 96
    factor = round(face / FACE_IN_HEAD) / head.width
    truth = close_up.keypoints * factor + at
    for detection in (
        pipeline(models).cascade.find(
            decode_picture(encode(scene(head, face, (1210, 410))), 960 * 540)
        ),
        pipeline(models, align_pixels=None).cascade.find(
            decode_picture(encode(scene(head, face, (1210, 410))))
        ),
    ):
        (found,) = detection.detections
        assert np.abs(found.keypoints - truth).max() < 0.03 * face
        assert found.landmarks is not None
        eyes = found.landmarks[:2]
        np.testing.assert_allclose(eyes, truth[[RIGHT_EYE, LEFT_EYE]], atol=0.08 * face)


@pytest.mark.parametrize("resample", list(RESAMPLERS))
@pytest.mark.parametrize("size", [(1920, 1080), (1280, 720)])
def test_every_detection_filter_lands_the_points_where_the_face_was_pasted(
    head: Image.Image, models: dict[str, InferenceModel], resample: str, size: tuple[int, int]
) -> None:
    """A balanced-sized detection picture shrunk 1.5x (1080p) or 2x (720p) by each filter."""
    (close_up,) = pipeline(models).detect(np.asarray(head))
    at, face = np.array([610.0, 210.0]), 96
    truth = close_up.keypoints * round(face / FACE_IN_HEAD) / head.width + at
    cascade = pipeline(models, detect_pixels=640 * 360, resample=resample).cascade
    (found,) = cascade.find(decode_picture(encode(scene(head, face, (610, 210), size)))).detections
    assert np.abs(found.keypoints - truth).max() < 0.05 * face
    assert found.landmarks is not None
    eyes = found.landmarks[:2]
    np.testing.assert_allclose(eyes, truth[[RIGHT_EYE, LEFT_EYE]], atol=0.08 * face)


@pytest.mark.parametrize("resample", list(RESAMPLERS))
@pytest.mark.parametrize("side", [110, 120, 125, 130, 140])
def test_a_face_around_a_held_print_is_never_hidden(
    head: Image.Image, models: dict[str, InferenceModel], resample: str, side: int
) -> None:
    """A stranger (300 px) holds her print over his eye: he is a face, or an unconfirmed one.

    His eye covered, YuNet is unsure of his face and BlazeFace's look at it finds her print
    again; before, at some print sizes and filters, he vanished and only she was left.
    """
    frame = ImageOps.fit(Image.open(source_path("coffee.png")).convert("RGB"), (1920, 1080))
    frame.paste(
        Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB").resize((300, 300)), (800, 200)
    )
    frame.paste(head.resize((side, side)), (925 + (130 - side) // 2, 245 + (130 - side) // 2))
    cascade = pipeline(models, detect_pixels=640 * 360, resample=resample).cascade
    found = cascade.find(decode_picture(encode(frame), 960 * 540))
    his = [d for d in found.detections if d.box[2] - d.box[0] > 150]
    assert his or found.unconfirmed >= 1


@pytest.mark.parametrize("resample", list(RESAMPLERS))
@pytest.mark.parametrize(
    ("him", "print_"),
    [
        ((300, (800, 200)), (257, (702, 90))),  # over his forehead: YuNet unsure of him
        ((300, (800, 200)), (214, (884, 112))),
        ((700, (500, 300)), (400, (825, 471))),  # a close-up only BlazeFace sees, print beside
    ],
)
def test_a_face_beside_a_held_print_is_never_hidden(
    head: Image.Image,
    models: dict[str, InferenceModel],
    resample: str,
    him: tuple[int, tuple[int, int]],
    print_: tuple[int, tuple[int, int]],
) -> None:
    """The print not centred on his face: his unsure face next to hers still counts."""
    frame = ImageOps.fit(Image.open(source_path("coffee.png")).convert("RGB"), (1920, 1080))
    hanks = Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB")
    frame.paste(hanks.resize((him[0], him[0])), him[1])
    frame.paste(head.resize((print_[0], print_[0])), print_[1])
    cascade = pipeline(models, detect_pixels=640 * 360, resample=resample).cascade
    found = cascade.find(decode_picture(encode(frame), 960 * 540))
    his = [d for d in found.detections if d.box[2] - d.box[0] > 0.6 * him[0]]
    assert his or found.unconfirmed >= 1


def test_a_face_around_a_found_face_surrounds_it() -> None:
    face = (100.0, 100.0, 150.0, 150.0)
    assert surrounds((60.0, 60.0, 200.0, 260.0), [face])  # 140 px around a 50 px face
    assert not surrounds((90.0, 90.0, 180.0, 180.0), [face])  # 90 px: not over twice as wide
    assert not surrounds((300.0, 60.0, 440.0, 260.0), [face])  # beside it
    assert near((160.0, 100.0, 210.0, 150.0), [face])  # the next face width
    assert not near((300.0, 100.0, 350.0, 150.0), [face])  # three face widths away


def test_an_unknown_filter_is_refused_before_any_frame() -> None:
    with pytest.raises(ManifestError, match="unknown resample 'lanczos'"):
        DetectionConfig(resample="lanczos")
    with pytest.raises(ManifestError, match="unknown resample 'lanczos'"):
        DetectionConfig(gray_resample="lanczos")
    with pytest.raises(ManifestError, match=r"fast\.config\.gray_resample: one of"):
        DetectionConfig.from_config({"gray_resample": 2}, "fast")


def test_a_grey_frame_gets_its_own_pixels_and_filter(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    """Night frames are shrunk with ``gray_resample`` to ``gray_detect_pixels``, day ones not."""
    cascade = pipeline(
        models,
        detect_pixels=544 * 306,
        resample="nearest",
        gray_detect_pixels=640 * 360,
        gray_resample="box",
    ).cascade
    frame = scene(head, 64, (700, 400))
    colour = decode_picture(encode(frame), 960 * 540)
    grey = decode_picture(encode(ImageOps.grayscale(frame).convert("RGB")), 960 * 540)
    day, night = cascade.detection_picture(colour), cascade.detection_picture(grey)
    assert day.pixels.shape == (306, 544, 3)
    np.testing.assert_array_equal(day.pixels, shrink(colour, 544 * 306, "nearest").pixels)
    assert night.pixels.shape == (360, 640, 3)
    np.testing.assert_array_equal(night.pixels, shrink(grey, 640 * 360, "box").pixels)
    assert not np.array_equal(night.pixels, shrink(grey, 640 * 360, "nearest").pixels)


@pytest.mark.parametrize("tier", ["accurate", "balanced", "fast"])
def test_every_tier_finds_a_96_px_face_blazeface_alone_misses(
    head: Image.Image, models: dict[str, InferenceModel], tier: str
) -> None:
    frame = encode(scene(head, 96, (300, 200)))
    recognizer = FaceRecognizer.load(PACK, tier, "onnxruntime")
    (face,) = recognizer.pipeline.scan(frame).faces
    assert 250 < face.detection.box[0] < 420 and 150 < face.detection.box[1] < 330
    alone = FacePipeline(
        models["face_detector"], models["face_embedder"], embedding=recognizer.pipeline.embedding
    )
    assert alone.faces_in_bytes(frame) == []
    close = alone.faces(np.asarray(head))
    assert np.linalg.norm(face.embedding - close[0].embedding) < recognizer.threshold  # her


def test_a_small_face_gets_its_points_again_from_the_crop(
    head: Image.Image, models: dict[str, InferenceModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64 px face is 18 px in a 544x306 picture: its five points are found again on the
    half-scale crop, as close to YuNet's on the whole half-scale picture as that allows."""
    frame = decode_picture(encode(scene(head, 64, (1100, 500), background=(40, 60, 50))), 960 * 540)
    width = 64.0

    def points(detect_pixels: int) -> np.ndarray:
        (face,) = (
            pipeline(models, detect_pixels=detect_pixels, resample="nearest")
            .cascade.find(frame)
            .detections
        )
        assert face.landmarks is not None
        return face.landmarks

    reference = points(960 * 540)  # YuNet on the picture the crops come from: no second look
    fine = points(544 * 306)
    monkeypatch.setattr(cascade_module, "FINE_LANDMARKS_BELOW", 0.0)
    coarse = points(544 * 306)
    fine_error = float(np.linalg.norm(fine - reference, axis=1).max()) / width
    coarse_error = float(np.linalg.norm(coarse - reference, axis=1).max()) / width
    assert fine_error < 0.08  # 0.05 here
    assert coarse_error > 2 * fine_error  # 0.17 here


def test_a_grey_night_frame_is_found_and_matches_the_colour_face(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    recognizer = FaceRecognizer.load(PACK, "balanced", "onnxruntime")
    colour = scene(head, 96, (900, 300))
    (day,) = recognizer.pipeline.scan(encode(colour)).faces
    (night,) = recognizer.pipeline.scan(encode(colour.convert("L"))).faces
    assert np.linalg.norm(day.embedding - night.embedding) < recognizer.threshold


def test_a_thumbnail_and_a_panorama_are_bounded(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    recognizer = FaceRecognizer.load(PACK, "balanced", "onnxruntime")
    thumbnail = recognizer.pipeline.scan(encode(scene(head, 48, (40, 20), (160, 120))))
    assert (thumbnail.width, thumbnail.height) == (160, 120)
    assert len(thumbnail.faces) == 1
    panorama = recognizer.pipeline.scan(encode(scene(head, 400, (7000, 400), (16000, 2000))))
    assert (panorama.width, panorama.height) == (16000, 2000)
    assert len(panorama.faces) == 1  # at 1/4 the face is 100 px: found


def test_fifty_faces_are_bounded_work_and_marked_as_too_many(
    head: Image.Image, models: dict[str, InferenceModel]
) -> None:
    frame = Image.new("RGB", (1920, 1080), (96, 110, 120))
    small = head.resize((150, 150), Image.Resampling.LANCZOS)
    for index in range(50):
        frame.paste(small, (30 + (index % 10) * 188, 20 + (index // 10) * 210))
    runs = []

    class Counted:
        """The real BlazeFace model, counting its runs (the work the cascade does)."""

        backend = models["face_detector"].backend
        input_names = models["face_detector"].input_names
        output_names = models["face_detector"].output_names

        def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
            runs.append(1)
            return models["face_detector"].run(feed)

    counted = FacePipeline(
        Counted(),
        models["face_embedder"],
        proposer=models["face_proposer"],
        detection=DetectionConfig(),
        embedding=embedder_config(PACK.model("balanced", "face_embedder").config),
    )
    result = counted.scan(encode(frame))
    assert result.more_faces
    assert len(result.faces) == counted.max_faces
    assert len(runs) <= 1 + MAX_REFINES  # the whole picture, then at most MAX_REFINES crops


def test_a_huge_box_around_a_small_face_is_not_that_face() -> None:
    """Boxes of one face: overlapping, or a centre inside the other at a similar size."""
    face = (100.0, 100.0, 200.0, 200.0)
    assert same_face(face, [(0.0, 0.0, 1000.0, 1000.0)]) is None  # a false face half a frame
    assert same_face(face, [(500.0, 500.0, 600.0, 600.0), (90.0, 70.0, 210.0, 230.0)]) == 1
    assert same_face(face, [(130.0, 140.0, 330.0, 340.0)]) == 0  # centre inside, twice as wide


def test_sface_chips_of_door_frames_use_yunet_mouth_corners(head: Image.Image) -> None:
    """A 96 px face of a 1080p frame, ArcFace-framed by YuNet's five points, is still her.

    The door frame's chip is cut with YuNet's detected mouth corners (BlazeFace has only a
    mouth centre); its SFace embedding lies within the door distance of the close-up's.
    """
    from custom_components.compact_ai.engine.face.align import ARCFACE_112, align_face
    from custom_components.compact_ai.engine.face.recognizer import load_pipeline
    from tools.compact.pack.reference import SFACE_TIER, build_reference_pack

    reference = ModelPack.load(build_reference_pack())
    sface = load_pipeline(reference, SFACE_TIER, "onnxruntime")
    assert sface.embedding.alignment is ARCFACE_112
    close_up = sface.scan(encode(head)).faces[0].embedding
    picture = decode_picture(encode(scene(head, 96, (1210, 410))))
    (found,) = sface.cascade.find(picture).detections
    assert found.landmarks is not None
    chip = sface.chip(picture, found)
    keypoints, landmarks = picture.to_picture(found.keypoints), picture.to_picture(found.landmarks)
    np.testing.assert_array_equal(
        chip, align_face(picture.pixels, keypoints, ARCFACE_112, landmarks)
    )
    estimated = align_face(picture.pixels, keypoints, ARCFACE_112)
    assert np.abs(chip.astype(float) - estimated).mean() > 0.5  # the corners made a difference
    door = float(np.linalg.norm(sface.embed(chip) - close_up))
    assert door < 0.9, door  # 0.8 x OpenCV Zoo's SFace threshold 1.128

"""The face pipeline: a frame -> faces with box, keypoints, quality and embedding.

Detection (``cascade.py``: BlazeFace, plus YuNet proposals where the tier ships YuNet),
alignment to the chip framing the tier's embedder wants (dlib's or ArcFace's,
:class:`EmbedderConfig`), quality, and the embedding. The pipeline is
handed already-loaded models, so the integration, the toolkit and the tests run the same code
whatever backend or pack the models came from.

A camera frame's bytes go through :meth:`FacePipeline.scan`: decoded at the least scale the
tier needs (``image.py``), faces found in frame pixels, aligned from that picture (with
``sharpen``, from a larger decode when a face is smaller than a chip's), embedded; each
stage timed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ..errors import InferenceError, ManifestError
from ..runtime.backend import InferenceModel
from .align import ALIGNMENTS, DLIB_150, TEMPLATE, Alignment, align_face
from .cascade import Cascade, DetectionConfig
from .detector import LEFT_EYE, RIGHT_EYE, SHORT_RANGE, VARIANTS, Detection, DetectorConfig
from .image import Picture, decode_picture
from .quality import FaceQuality, assess

EMBEDDER_INPUT: Final = "chip"
MIN_LENGTH: Final = 1e-6  # an embedding this short (or longer than MAX_LENGTH) is no face's
MAX_LENGTH: Final = 1e6
EMBEDDING_SIZE: Final = 128
MAX_FACES: Final = 10
STAGES: Final = ("decode", "detect", "align", "embed")
Choice = Callable[[list[Detection], int, int], list[Detection]]
CHIP_EYE_DISTANCE: Final = float(np.hypot(*(TEMPLATE[1] - TEMPLATE[0])))  # px in a 150 px chip


@dataclass(frozen=True, slots=True)
class Face:
    """One recognized-ready face: where it is, how good it is, and its embedding."""

    detection: Detection
    quality: FaceQuality
    embedding: np.ndarray  # float32 (128,): dlib's unnormalized, SFace's of length 1


@dataclass(frozen=True, slots=True)
class FrameFaces:
    """The faces of one frame (at most ``max_faces``), its size and the ms of each stage."""

    faces: list[Face]
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)  # every face found, best first
    more_faces: bool = False  # more faces than are kept, or too many to look at
    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    unconfirmed_faces: int = 0  # faces only the proposer saw: none can be recognized


@dataclass(frozen=True, slots=True)
class EmbedderConfig:
    """How an embedder wants its faces: the chip framing, and whether to L2-normalize.

    dlib's ResNet compares raw descriptors (its 0.6 threshold); SFace compares by cosine,
    so its embeddings are normalized and the Euclidean distance is sqrt(2 - 2 cos).
    """

    alignment: Alignment = DLIB_150
    normalize: bool = False


def embedder_config(config: Mapping[str, Any]) -> EmbedderConfig:
    """Return the embedder options named by a pack entry's config (``alignment``, ``normalize``)."""
    name = str(config.get("alignment", DLIB_150.name))
    if name not in ALIGNMENTS:
        raise ManifestError(f"unknown face alignment {name!r}")
    alignment = ALIGNMENTS[name]
    inputs = config.get("inputs") or [{}]
    shape = inputs[0].get("shape", [1, 3, alignment.size, alignment.size])
    if list(shape[-2:]) != [alignment.size, alignment.size]:
        size = alignment.size
        raise ManifestError(f"the {name} alignment makes {size} px chips, not {shape[-2:]}")
    return EmbedderConfig(alignment, bool(config.get("normalize", False)))


def detector_config(config: Mapping[str, Any]) -> DetectorConfig:
    """Return the BlazeFace options named by a pack entry's config (``variant``)."""
    variant = str(config.get("variant", SHORT_RANGE.variant))
    if variant not in VARIANTS:
        raise ManifestError(f"unknown face detector variant {variant!r}")
    options = VARIANTS[variant]
    size = config.get("input_size", options.input_size)
    if size != options.input_size:
        wanted = options.input_size
        raise ManifestError(f"the {variant} range detector takes {wanted} px, not {size}")
    return options


def whole(image: np.ndarray) -> Picture:
    """Return an RGB array as a picture of itself (frame and picture pixels are the same)."""
    return Picture(image, (1.0, 1.0), (image.shape[1], image.shape[0]))


def eye_distance(detection: Detection) -> float:
    """Return the distance between the eyes of a detection, in frame pixels."""
    points = detection.keypoints
    return float(np.hypot(*(points[LEFT_EYE] - points[RIGHT_EYE])))


class FacePipeline:
    """Find, align, assess and embed the faces of a frame."""

    def __init__(
        self,
        detector: InferenceModel,
        embedder: InferenceModel,
        config: DetectorConfig = SHORT_RANGE,
        max_faces: int = MAX_FACES,
        *,
        proposer: InferenceModel | None = None,
        detection: DetectionConfig | None = None,
        embedding: EmbedderConfig | None = None,
    ) -> None:
        """Use loaded BlazeFace ``detector`` (of ``config``), ``embedder`` and YuNet ``proposer``.

        Without a proposer, only BlazeFace finds faces (close-ups), on the frame reduced to
        ``detection``'s pixels (default: at most 960x540, letterboxed into 128 px anyway) and
        aligned from the whole frame; ``embedding`` how the embedder wants its chips (default:
        dlib's).
        """
        self.detection = detection or DetectionConfig(align_pixels=None)
        self.cascade = Cascade(detector, config, proposer, self.detection)
        self.detector = detector
        self.embedder = embedder
        self.embedding = embedding or EmbedderConfig()
        self.config = config
        self.max_faces = max_faces

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Return up to ``max_faces`` detections in ``image`` (H, W, 3) uint8, best first."""
        return self.cascade.find(whole(image)).detections[: self.max_faces]

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """Return the (128,) float32 embedding of one chip aligned for this embedder."""
        tensor = chip.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
        (descriptor,) = self.embedder.run({EMBEDDER_INPUT: np.ascontiguousarray(tensor)})
        vector = np.asarray(descriptor, dtype=np.float32).reshape(EMBEDDING_SIZE)
        length = float(np.linalg.norm(vector.astype(np.float64)))
        if not np.all(np.isfinite(vector)) or not MIN_LENGTH <= length <= MAX_LENGTH:
            # nothing downstream may compare or store it: a zero vector is 1.0 from every
            # unit-length embedding, inside the naming threshold
            raise InferenceError(f"the face embedder returned a degenerate embedding ({length:g})")
        if self.embedding.normalize:
            vector = (vector / length).astype(np.float32)
        return vector

    def cut(
        self, image: np.ndarray, keypoints: np.ndarray, landmarks: np.ndarray | None = None
    ) -> np.ndarray:
        """Return the chip of the face with these points (``image`` pixels) for the embedder."""
        return align_face(image, keypoints, self.embedding.alignment, landmarks)

    def chip(self, picture: Picture, detection: Detection) -> np.ndarray:
        """Return the embedder's chip of a detection (frame pixels) cut from ``picture``."""
        landmarks = detection.landmarks
        return self.cut(
            picture.pixels,
            picture.to_picture(detection.keypoints),
            None if landmarks is None else picture.to_picture(landmarks),
        )

    def quality(self, picture: Picture, detection: Detection, chip: np.ndarray) -> FaceQuality:
        """Assess a face on dlib's 150 px framing whatever the embedder.

        The enrollment gate's sharpness was set there; ``chip`` is reused when it is that
        framing, otherwise it is cut once more.
        """
        if self.embedding.alignment is not DLIB_150:
            chip = align_face(picture.pixels, picture.to_picture(detection.keypoints))
        return assess(detection, chip)

    def face(self, image: np.ndarray, detection: Detection) -> Face:
        """Align, assess and embed one detected face of a whole-frame array."""
        picture = whole(image)
        chip = self.chip(picture, detection)
        return Face(detection, self.quality(picture, detection, chip), self.embed(chip))

    def faces(self, image: np.ndarray) -> list[Face]:
        """Return every face found in ``image`` (H, W, 3) uint8, best detection first."""
        return [self.face(image, detection) for detection in self.detect(image)]

    def faces_in_bytes(self, data: bytes) -> list[Face]:
        """Decode image bytes (raises ImageDecodeError) and return their faces."""
        return self.scan(data).faces

    def scan(self, data: bytes, choose: Choice | None = None) -> FrameFaces:
        """Decode, detect, align and embed the faces of a frame (raises ImageDecodeError).

        ``choose`` picks the detections to embed (default: the best ``max_faces``) from all
        of them, given the frame's width and height.
        """
        ms = dict.fromkeys(STAGES, 0.0)
        clock = [time.perf_counter()]

        def lap(stage: str) -> None:
            now = time.perf_counter()
            ms[stage] += (now - clock[0]) * 1000
            clock[0] = now

        picture = decode_picture(data, self.detection.decode_pixels)
        lap("decode")
        found = self.cascade.find(picture)
        if choose is None or not found.detections:
            kept = found.detections[: self.max_faces]
        else:
            kept = choose(found.detections, *picture.frame_size)
        lap("detect")
        if self.detection.sharpen and kept:
            picture = self._sharper(data, picture, min(eye_distance(d) for d in kept))
            lap("decode")
        faces = []
        for detection in kept:
            chip = self.chip(picture, detection)
            lap("align")
            quality = self.quality(picture, detection, chip)
            faces.append(Face(detection, quality, self.embed(chip)))
            lap("embed")
        more = found.crowded or len(found.detections) > self.max_faces
        return FrameFaces(faces, *picture.frame_size, found.detections, more, ms, found.unconfirmed)

    @staticmethod
    def _sharper(data: bytes, picture: Picture, eyes: float) -> Picture:
        """Decode again, larger, until eyes ``eyes`` frame px apart are as far as a chip's."""
        wanted = min(1.0, CHIP_EYE_DISTANCE / max(eyes, 1e-6))
        if wanted <= min(picture.scale) * (1 + 1e-9):
            return picture
        width, height = picture.frame_size
        return decode_picture(data, math.ceil(width * height * wanted * wanted))

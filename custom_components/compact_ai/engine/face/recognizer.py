"""Face recognition for one tier and backend: scan frames, enroll faces, keep the gallery.

This ties the face pipeline and the gallery to a model pack, and adds what the Home
Assistant layer needs on top: the quality gate for enrollment, timings, and chips kept so
embeddings can be recomputed when the embedder changes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import numpy as np
from PIL import Image

from ..errors import ImageDecodeError, InferenceError, ManifestError
from ..runtime.backend import load_model
from ..runtime.pack import ModelPack
from .align import ALIGN_KEYPOINTS, CHIP_SIZE, DLIB_150, STORED, stored_chip
from .cascade import DetectionConfig
from .gallery import DLIB_THRESHOLD, Gallery, Match, margin_for
from .image import decode_image
from .pipeline import STAGES, Face, FacePipeline, detector_config, embedder_config, whole
from .quality import FaceQuality

DETECTOR_TASK: Final = "face_detector"
PROPOSER_TASK: Final = "face_proposer"
EMBEDDER_TASK: Final = "face_embedder"
UNLOCK_FACTOR: Final = 0.8  # unlock distance when the tier does not calibrate its own
STRICT_FACTOR: Final = 0.9  # the "strict matching" option: tighter than the unlock distance


class Rejection(StrEnum):
    """Why an image cannot be enrolled."""

    NO_FACE = "no_face"
    MANY_FACES = "many_faces"
    TOO_SMALL = "too_small"
    BLURRY = "blurry"
    NOT_FRONTAL = "not_frontal"
    BAD_IMAGE = "bad_image"
    NO_EMBEDDING = "no_embedding"  # the embedder gave no usable result for this face


@dataclass(frozen=True, slots=True)
class QualityGate:
    """The least a face must offer to be enrolled."""

    min_eye_distance: float = 18.0
    min_sharpness: float = 15.0
    min_frontalness: float = 0.45

    def check(self, quality: FaceQuality) -> Rejection | None:
        """Return why ``quality`` is not good enough, or ``None``."""
        if quality.eye_distance < self.min_eye_distance:
            return Rejection.TOO_SMALL
        if quality.sharpness < self.min_sharpness:
            return Rejection.BLURRY
        if quality.frontalness < self.min_frontalness:
            return Rejection.NOT_FRONTAL
        return None


@dataclass(frozen=True, slots=True)
class Recognition:
    """One face of a scanned frame and who it is."""

    face: Face
    match: Match


@dataclass(frozen=True, slots=True)
class Scan:
    """Every face of one frame, with the time the engine took (decoding included)."""

    recognitions: tuple[Recognition, ...]
    width: int
    height: int
    inference_ms: float
    more_faces: bool = False  # more faces were found than are kept (the door then denies)
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    unconfirmed_faces: int = 0  # faces seen but not recognizable (the door then denies)


@dataclass(frozen=True, slots=True)
class Enrollment:
    """An image accepted for enrollment: its embedding and the chip kept to re-embed it.

    ``chip_jpeg`` is the face in the :data:`~.align.STORED` framing (JPEG bytes), ``points``
    BlazeFace's eyes, nose tip and mouth (4, 2) in its pixels, ``landmarks`` YuNet's five
    points there when YuNet saw the face: every tier's chip is cut from them.
    """

    embedding: np.ndarray
    chip_jpeg: bytes
    points: np.ndarray
    landmarks: np.ndarray | None
    quality: FaceQuality


def encode_chip(chip: np.ndarray) -> bytes:
    """Return an aligned chip as JPEG bytes (what is stored to re-embed later)."""
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def decode_chip(data: bytes) -> np.ndarray:
    """Return a stored chip: 224 px (:data:`~.align.STORED`) or 150 px (before version 3)."""
    chip = decode_image(data)
    if chip.shape not in ((STORED.size, STORED.size, 3), (CHIP_SIZE, CHIP_SIZE, 3)):
        raise ImageDecodeError(f"a stored face chip is {chip.shape[1]}x{chip.shape[0]} px")
    return chip


def _distance(config: Mapping[str, Any], key: str, where: str) -> float:
    value = config[key]
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise ManifestError(f"{where}.config.{key}: expected a distance above 0, not {value!r}")
    return float(value)


def door_distances(config: Mapping[str, Any], where: str) -> tuple[float, float]:
    """Return an embedder's naming and unlock distances, from its manifest ``config``.

    Without ``unlock_threshold`` the door opens within ``threshold`` * :data:`UNLOCK_FACTOR`.
    One that is there is the tier's calibration and is used as it is: one the door cannot
    trust (not a number, 0 or less, wider than ``threshold``) fails the load with
    :class:`ManifestError`, since falling back would open the door at another distance.
    """
    threshold = _distance(config, "threshold", where) if "threshold" in config else DLIB_THRESHOLD
    if "unlock_threshold" not in config:
        return threshold, threshold * UNLOCK_FACTOR
    unlock = _distance(config, "unlock_threshold", where)
    if unlock > threshold:
        raise ManifestError(
            f"{where}.config.unlock_threshold: {unlock!r} is wider than the threshold "
            f"{threshold!r} that names a face"
        )
    return threshold, unlock


def load_pipeline(pack: ModelPack, tier: str, backend: str, *, threads: int = 1) -> FacePipeline:
    """Load a tier's face pipeline: BlazeFace, YuNet if the tier has it, the embedder."""
    detector = pack.model(tier, DETECTOR_TASK)
    proposer = detection = None
    if PROPOSER_TASK in pack.tiers[tier].models:
        entry = pack.model(tier, PROPOSER_TASK)
        where = f"tiers.{tier}.models.{PROPOSER_TASK}"
        detection = DetectionConfig.from_config(entry.config, where)
        proposer = load_model(pack, entry, backend, threads=threads)
    embedder = pack.model(tier, EMBEDDER_TASK)
    return FacePipeline(
        load_model(pack, detector, backend, threads=threads),
        load_model(pack, embedder, backend, threads=threads),
        detector_config(detector.config),
        proposer=proposer,
        detection=detection,
        embedding=embedder_config(embedder.config),
    )


class FaceRecognizer:
    """Scan frames and enroll faces with one loaded pipeline and one gallery."""

    def __init__(
        self,
        pipeline: FacePipeline,
        *,
        embedder_id: str,
        threshold: float,
        unlock_threshold: float,
    ) -> None:
        """Use ``pipeline``; ``embedder_id`` names the embedder (its file's sha256).

        ``threshold`` names a face in events; the door uses ``unlock_threshold`` (calibrated
        so that no impostor of the held-out set is accepted), or a stricter one on request.
        Both come from :func:`door_distances`.
        """
        self.pipeline = pipeline
        self.embedder_id = embedder_id
        self.threshold = threshold
        self.unlock_threshold = unlock_threshold
        self.strict_threshold = self.unlock_threshold * STRICT_FACTOR
        self.gallery = Gallery(threshold, margin_for(threshold))

    @classmethod
    def load(cls, pack: ModelPack, tier: str, backend: str, *, threads: int = 1) -> FaceRecognizer:
        """Load a tier's detectors and embedder (sha256-verified) on ``backend``.

        The door's distances are checked first: a manifest the door cannot trust loads nothing.
        """
        embedder_entry = pack.model(tier, EMBEDDER_TASK)
        where = f"tiers.{tier}.models.{EMBEDDER_TASK}"
        threshold, unlock_threshold = door_distances(embedder_entry.config, where)
        pipeline = load_pipeline(pack, tier, backend, threads=threads)
        return cls(
            pipeline,
            embedder_id=embedder_entry.files[backend][-1].sha256,
            threshold=threshold,
            unlock_threshold=unlock_threshold,
        )

    def set_people(
        self,
        people: Iterable[tuple[str, list[np.ndarray], list[np.ndarray]]],
    ) -> None:
        """Replace the gallery with (name, embeddings, negatives) of every person."""
        gallery = Gallery(self.threshold, self.gallery.margin)
        for name, embeddings, negatives in people:
            for embedding in embeddings:
                gallery.add(name, embedding)
            for embedding in negatives:
                gallery.add_negative(embedding, name)
        self.gallery = gallery

    def scan(self, data: bytes) -> Scan:
        """Find and recognize every face in an image (raises ImageDecodeError)."""
        found = self.pipeline.scan(data)
        recognitions = tuple(
            Recognition(face, self.gallery.match(face.embedding)) for face in found.faces
        )
        return Scan(
            recognitions,
            found.width,
            found.height,
            sum(found.ms.values()),
            more_faces=found.more_faces,
            stage_ms=found.ms,
            unconfirmed_faces=found.unconfirmed_faces,
        )

    def enroll(self, data: bytes, gate: QualityGate) -> Enrollment | Rejection:
        """Return the enrollment of an image with exactly one good face, or why not."""
        try:
            image = decode_image(data)
        except ImageDecodeError:
            return Rejection.BAD_IMAGE
        detections = self.pipeline.detect(image)
        if not detections:
            return Rejection.NO_FACE
        if len(detections) > 1:
            return Rejection.MANY_FACES
        face = detections[0]
        chip = self.pipeline.chip(whole(image), face)
        quality = self.pipeline.quality(whole(image), face, chip)
        rejection = gate.check(quality)
        if rejection is not None:
            return rejection
        try:
            embedding = self.pipeline.embed(chip)
        except InferenceError:
            return Rejection.NO_EMBEDDING
        kept, points, landmarks = stored_chip(image, face.keypoints, face.landmarks)
        return Enrollment(
            embedding,
            encode_chip(kept),
            points[list(ALIGN_KEYPOINTS)],
            landmarks,
            quality,
        )

    @property
    def reads_old_chips(self) -> bool:
        """Whether 150 px chips of before version 3 (dlib's framing, no points) suit it."""
        return self.pipeline.embedding.alignment is DLIB_150

    def embed_chip(
        self, data: bytes, points: np.ndarray | None, landmarks: np.ndarray | None = None
    ) -> np.ndarray:
        """Re-embed a stored chip (eyes, nose tip, mouth at ``points``) with this embedder.

        Without points, the chip is a 150 px one of before version 3: dlib's framing.
        """
        chip = decode_chip(data)
        if points is None:
            if not self.reads_old_chips or chip.shape[0] != CHIP_SIZE:
                raise ImageDecodeError("a stored chip without points is not dlib's framing")
            return self.pipeline.embed(chip)
        if chip.shape[0] != STORED.size:
            raise ImageDecodeError(f"a stored chip with points is {STORED.size} px")
        return self.pipeline.embed(self.pipeline.cut(chip, points, landmarks))

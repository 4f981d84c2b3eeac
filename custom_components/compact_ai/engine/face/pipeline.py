"""The face pipeline: image -> faces with box, keypoints, quality and embedding.

Detection (BlazeFace), alignment to dlib's chip framing, quality, and the dlib ResNet
embedding. The pipeline is handed already-loaded models, so the integration, the toolkit and
the tests run the same code whatever backend or pack the models came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ..runtime.backend import InferenceModel
from .align import CHIP_SIZE, align_face
from .detector import (
    SHORT_RANGE,
    VARIANTS,
    Detection,
    DetectorConfig,
    detect_faces,
    merge_detections,
    ssd_anchors,
)
from .image import decode_image
from .quality import FaceQuality, assess

EMBEDDER_INPUT: Final = "chip"
EMBEDDING_SIZE: Final = 128
MAX_FACES: Final = 10


@dataclass(frozen=True, slots=True)
class Face:
    """One recognized-ready face: where it is, how good it is, and its embedding."""

    detection: Detection
    quality: FaceQuality
    embedding: np.ndarray  # float32 (128,), unnormalized like dlib's


def detector_config(config: Mapping[str, Any]) -> DetectorConfig:
    """Return the BlazeFace options named by a pack entry's config (``variant``)."""
    variant = str(config.get("variant", SHORT_RANGE.variant))
    if variant not in VARIANTS:
        raise ValueError(f"unknown face detector variant {variant!r}")
    options = VARIANTS[variant]
    size = config.get("input_size", options.input_size)
    if size != options.input_size:
        raise ValueError(f"the {variant} range detector takes {options.input_size} px, not {size}")
    return options


class FacePipeline:
    """Find, align, assess and embed the faces of a frame."""

    def __init__(
        self,
        detector: InferenceModel,
        embedder: InferenceModel,
        config: DetectorConfig = SHORT_RANGE,
        max_faces: int = MAX_FACES,
        *,
        far_detector: tuple[InferenceModel, DetectorConfig] | None = None,
    ) -> None:
        """Use loaded ``detector`` and ``embedder`` models with the detector's ``config``.

        With ``far_detector`` (the full-range model), both detectors run and their faces are
        merged: short range finds close-ups, full range finds faces at doorway distance.
        """
        self._detectors = [(detector, config, ssd_anchors(config))]
        if far_detector is not None:
            far_model, far_config = far_detector
            self._detectors.append((far_model, far_config, ssd_anchors(far_config)))
        self._embedder = embedder
        self.config = config
        self.max_faces = max_faces

    def detect_all(self, image: np.ndarray) -> list[Detection]:
        """Return every detection in ``image`` (H, W, 3) uint8, best first (no cap)."""
        found: list[Detection] = []
        for model, config, anchors in self._detectors:
            found += detect_faces(model.run, image, config, anchors)
        if len(self._detectors) > 1:
            found = merge_detections(found, self.config.iou_threshold)
        return found

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Return up to ``max_faces`` detections in ``image`` (H, W, 3) uint8, best first."""
        return self.detect_all(image)[: self.max_faces]

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """Return the (128,) float32 embedding of one aligned chip (150, 150, 3) uint8."""
        tensor = chip.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
        (descriptor,) = self._embedder.run({EMBEDDER_INPUT: np.ascontiguousarray(tensor)})
        return np.asarray(descriptor, dtype=np.float32).reshape(EMBEDDING_SIZE)

    def face(self, image: np.ndarray, detection: Detection) -> Face:
        """Align, assess and embed one detected face."""
        chip = align_face(image, detection.keypoints, CHIP_SIZE)
        return Face(detection, assess(detection, chip), self.embed(chip))

    def faces(self, image: np.ndarray) -> list[Face]:
        """Return every face found in ``image`` (H, W, 3) uint8, best detection first."""
        return [self.face(image, detection) for detection in self.detect(image)]

    def faces_in_bytes(self, data: bytes) -> list[Face]:
        """Decode image bytes (raises ImageDecodeError) and return their faces."""
        return self.faces(decode_image(data))

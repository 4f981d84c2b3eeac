"""Calibration and evaluation data: face chips from photos, speech windows from audio.

Photos are split by identity (the sub-folder a photo is in): identities sorted by name, the
first ``fraction`` for calibration and the rest for evaluation, so that no image (and no person)
is used for both. Face chips are made like the engine makes them: the reference BlazeFace finds
the image's primary face and ``align_face`` warps it to the embedder's chip (dlib's 150 px by
default); jitter perturbs the keypoints (shift, scale, rotation) and mirrors. A photo without
a detected face is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from custom_components.compact_ai.engine.errors import AudioFormatError
from custom_components.compact_ai.engine.face.align import DLIB_150, Alignment, align_face
from custom_components.compact_ai.engine.face.detector import (
    SHORT_RANGE,
    detect_faces,
    ssd_anchors,
)
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from custom_components.compact_ai.engine.voice.audio import read_wav
from tools.compact.compress.graph import Feed
from tools.compact.errors import ToolError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
AUDIO_SUFFIXES = (".wav",)


def files(root: Path, suffixes: Sequence[str]) -> list[Path]:
    """Every file under ``root`` with one of ``suffixes``, sorted."""
    found = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in suffixes)
    if not found:
        raise ToolError(f"{root}: no {'/'.join(suffixes)} files")
    return found


def split_by_identity(
    paths: Sequence[Path], fraction: float = 0.3
) -> tuple[list[Path], list[Path]]:
    """Split files by parent folder: the first ``fraction`` of the sorted folders calibrate."""
    identities = sorted({p.parent for p in paths})
    count = max(1, round(len(identities) * fraction)) if len(identities) > 1 else 1
    calibrate = set(identities[:count])
    first = [p for p in paths if p.parent in calibrate]
    rest = [p for p in paths if p.parent not in calibrate]
    return first, rest


class FaceChipper:
    """The engine's detection and alignment, on onnxruntime with the reference detector."""

    def __init__(self, detector: Path | None = None, alignment: Alignment = DLIB_150) -> None:
        """Use the BlazeFace short-range ONNX at ``detector`` (default: the reference pack)."""
        if detector is None:
            from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack

            detector = build_reference_pack() / REFERENCE_TIER / "face_detector.onnx"
        self._model = OnnxruntimeModel(Path(detector).read_bytes(), name="face_detector")
        self._anchors = ssd_anchors(SHORT_RANGE)
        self.alignment = alignment

    def chips(
        self, image: np.ndarray, count: int = 1, jitter: float = 0.0, seed: int = 0
    ) -> list[np.ndarray]:
        """``count`` aligned (size, size, 3) uint8 chips of the primary face (none if no face)."""
        from tools.compact.evaluate.verify import primary_face

        detections = detect_faces(self._model.run, image, SHORT_RANGE, self._anchors)
        if not detections:
            return []
        keypoints = primary_face(detections, image.shape[1], image.shape[0]).keypoints
        rng = np.random.default_rng(seed)
        chips = []
        for index in range(count):
            points = keypoints if index == 0 else _jittered(keypoints, jitter, rng)
            chip = align_face(image, points, self.alignment)
            chips.append(chip[:, ::-1] if index % 2 else chip)
        return chips


def _jittered(keypoints: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Keypoints moved by a random similarity: shift and scale by ``amount``, rotation."""
    centre = keypoints.mean(axis=0)
    size = float(np.ptp(keypoints[:, 0]))
    angle = rng.uniform(-1, 1) * amount * 2
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = 1 + rng.uniform(-amount, amount)
    shift = rng.uniform(-amount, amount, 2) * size
    moved: np.ndarray = (keypoints - centre) @ rotation.T * scale + centre + shift
    return moved


def face_chips(
    paths: Sequence[Path],
    *,
    per_image: int = 1,
    jitter: float = 0.0,
    limit: int | None = None,
    chipper: FaceChipper | None = None,
) -> np.ndarray:
    """[N, 3, size, size] float32 RGB 0..255 chips of the photos' primary faces.

    The first chip of an image is unjittered; the others are jittered (and every second one
    mirrored). Deterministic: image i uses seed i.
    """
    chipper = chipper or FaceChipper()
    chips: list[np.ndarray] = []
    for index, path in enumerate(paths):
        image = np.asarray(Image.open(path).convert("RGB"))
        chips += chipper.chips(image, per_image, jitter, seed=index)
        if limit is not None and len(chips) >= limit:
            break
    if not chips:
        raise ToolError("no face was found in the calibration photos")
    return np.stack(chips[:limit]).transpose(0, 3, 1, 2).astype(np.float32)


def speech_windows(paths: Sequence[Path], length: int, hop: int | None = None) -> np.ndarray:
    """Fixed-length windows ([N, length] float32, int16 range) cut from every audio file.

    Files are decoded like the integration decodes audio: any PCM WAV, mono, 16 kHz.
    """
    hop = hop or length
    windows = []
    for path in paths:
        try:
            audio = read_wav(path).samples.astype(np.float32)
        except AudioFormatError as err:
            raise ToolError(str(err)) from err
        if len(audio) < length:
            audio = np.pad(audio, (0, length - len(audio)))
        windows += [audio[s : s + length] for s in range(0, len(audio) - length + 1, hop)]
    return np.stack(windows)


def batches(name: str, samples: np.ndarray, batch: int = 8) -> list[Feed]:
    """Split samples into feeds of at most ``batch`` for the input ``name``."""
    return [{name: samples[i : i + batch]} for i in range(0, len(samples), batch)]

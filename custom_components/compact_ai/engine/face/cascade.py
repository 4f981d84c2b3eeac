"""Small faces in large frames: YuNet proposals, confirmed by BlazeFace on crops around each.

BlazeFace sees a whole frame letterboxed into 128 px, so a 96 px face of a 1080p doorbell
frame is 6 px there and is missed. The cascade, on a picture of the frame (see ``image.py``):

1. BlazeFace short range on the detection picture (the frame reduced to the tier's pixel
   count; letterboxed into 128 px either way) finds close-ups; one that fills at least a
   quarter of its input is kept if YuNet found it too, or if it is wider than YuNet finds
   faces (on smooth backgrounds the whole-picture pass sometimes sees a face half the frame
   wide that is not there);
2. YuNet on the same detection picture proposes faces down to about 10 px there;
3. each proposal that is not a kept close-up is cut from the picture as a square in which the
   face is 3/8 of the side (48 of BlazeFace's 128 px), and BlazeFace finds it again: its six
   keypoints are the ones the alignment template was derived from, and a proposal it does not
   confirm is dropped (half of YuNet's false faces); one YuNet is sure of
   (:data:`UNCONFIRMED_SCORE`), one next to a found face (:func:`near`), one around a found
   face (:func:`surrounds`: a print held over a face), and a whole-picture close-up YuNet
   missed next to a found face are counted, though (``unconfirmed``): faces no one could
   recognize, for which the door denies (a stranger whose face only YuNet sees must not be
   hidden behind the owner's print next to it).

Every box and keypoint ends in frame pixels; a face YuNet proposed keeps YuNet's five
landmarks (eyes, nose tip, mouth corners) too. Work is bounded: at most
:data:`MAX_REFINES` crops per frame, and a frame with more proposals says so (``crowded``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from ..errors import ManifestError
from ..runtime.backend import InferenceModel
from .detector import Detection, DetectorConfig, detect_faces, iou, merge_detections, ssd_anchors
from .image import RESAMPLERS, Picture, is_gray, shrink
from .proposals import MIN_SCORE, Proposal, propose

FACE_IN_CROP: Final = 0.375  # a crop is cut so that the face fills this much of its side
WELL_SEEN: Final = 0.25  # a face this much of BlazeFace's input side needs no second look
YUNET_LARGEST: Final = 300.0  # px: YuNet finds faces up to about this width (OpenCV Zoo)
MAX_REFINES: Final = 20  # crops per frame; more proposals than this make the frame crowded
OVERLAP: Final = 0.3  # IoU above which two boxes are one face
HD_PIXELS: Final = 960 * 540  # a 1080p frame at half scale
UNCONFIRMED_SCORE: Final = 0.7  # a proposal this sure is a face even where BlazeFace is not
# A face narrower than this in the detection picture gets YuNet's five points again from its
# crop, which has more of its pixels (balanced, 48 px faces: door TAR 51 -> 68 %)
FINE_LANDMARKS_BELOW: Final = 64.0  # px in the detection picture
SAME_BOX: Final = 0.5  # IoU with the proposal's box for the crop's face to be that face
AGREE: Final = 0.35  # of the face's width: no finer point may be farther from the first


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """How many pixels a tier spends on a frame (its manifest ``face_proposer`` config)."""

    detect_pixels: int = HD_PIXELS  # the detection picture of a colour frame (YuNet, BlazeFace)
    gray_detect_pixels: int = HD_PIXELS  # of a frame without colour (night IR needs more)
    align_pixels: int | None = HD_PIXELS  # least pixels faces are aligned from; None: whole
    sharpen: bool = False  # decode again, larger, for faces smaller than the chip's
    min_score: float = MIN_SCORE
    resample: str = "bilinear"  # how the detection picture is shrunk (image.RESAMPLERS)
    gray_resample: str = "bilinear"  # of a frame without colour: IR noise wants averaging

    def __post_init__(self) -> None:
        """Refuse a filter ``shrink`` does not know before a frame needs it."""
        for resample in (self.resample, self.gray_resample):
            if resample not in RESAMPLERS:
                raise ManifestError(f"unknown resample {resample!r}")

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], where: str) -> DetectionConfig:
        """Read and check a manifest entry's config."""
        values: dict[str, Any] = {}
        for key in ("detect_pixels", "gray_detect_pixels", "align_pixels"):
            if key in raw:
                value = raw[key]
                if key == "align_pixels" and value is None:
                    values[key] = None
                elif type(value) is not int or value < 32 * 32:
                    raise ManifestError(f"{where}.config.{key}: expected pixels, not {value!r}")
                else:
                    values[key] = value
        if "sharpen" in raw:
            if type(raw["sharpen"]) is not bool:
                raise ManifestError(f"{where}.config.sharpen: expected true or false")
            values["sharpen"] = raw["sharpen"]
        for key in ("resample", "gray_resample"):
            if key in raw:
                resample = raw[key]
                if not isinstance(resample, str) or resample not in RESAMPLERS:
                    names = ", ".join(RESAMPLERS)
                    raise ManifestError(f"{where}.config.{key}: one of {names}, not {resample!r}")
                values[key] = resample
        if "min_score" in raw:
            score = raw["min_score"]
            if not isinstance(score, int | float) or not 0.0 < score < 1.0:
                raise ManifestError(f"{where}.config.min_score: expected 0..1, not {score!r}")
            values["min_score"] = float(score)
        return cls(**values)

    @property
    def decode_pixels(self) -> int | None:
        """The least pixels a frame is decoded with (None: whole)."""
        if self.align_pixels is None:
            return None
        return max(self.detect_pixels, self.gray_detect_pixels, self.align_pixels)


@dataclass(frozen=True, slots=True)
class Found:
    """The faces of one frame in frame pixels, best first, and whether some were not looked at.

    ``unconfirmed``: proposals YuNet was sure of that BlazeFace did not find again and that are
    none of ``detections`` (faces that cannot be recognized, not nothing).
    """

    detections: list[Detection]
    crowded: bool
    unconfirmed: int = 0


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A face to look at again: box in frame pixels, score, YuNet's landmarks if it has them."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None


def _centre_inside(box: tuple[float, float, float, float], outer: tuple[float, ...]) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]


def same_face(
    box: tuple[float, float, float, float], others: list[tuple[float, float, float, float]]
) -> int | None:
    """Return the index of the first of ``others`` that is the same face as ``box``, or None.

    The same face: IoU above :data:`OVERLAP`, or either box's centre inside the other while
    neither is more than twice as wide (a YuNet box reaches from hairline to chin, BlazeFace's
    is a tighter square; a huge false box around a small face is not that face).
    """
    for index, other in enumerate(others):
        x0, y0 = max(box[0], other[0]), max(box[1], other[1])
        x1, y1 = min(box[2], other[2]), min(box[3], other[3])
        inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
        area = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1])
        if area - inter > 0 and inter / (area - inter) > OVERLAP:
            return index
        ratio = (box[2] - box[0]) / max(other[2] - other[0], 1e-9)
        inside = _centre_inside(box, other) or _centre_inside(other, box)
        if inside and 0.5 <= ratio <= 2.0:
            return index
    return None


def surrounds(
    box: tuple[float, float, float, float], faces: list[tuple[float, float, float, float]]
) -> bool:
    """Whether ``box`` is a face around one of ``faces``: its centre inside, over twice as wide.

    A real face holds no other face: a proposal around a found face is someone holding a
    print up to their own (their eye covered, so YuNet is unsure and BlazeFace misses it).
    """
    width = box[2] - box[0]
    return any(_centre_inside(face, box) and width > 2.0 * (face[2] - face[0]) for face in faces)


def near(
    box: tuple[float, float, float, float], faces: list[tuple[float, float, float, float]]
) -> bool:
    """Whether a found face's centre is within one ``box`` width of ``box`` (or inside it).

    An unsure face next to a recognized one may be a stranger holding up the owner's print,
    his own face half covered: it counts, however unsure, as a face nobody could recognize.
    """
    width = box[2] - box[0]
    around = (box[0] - width, box[1] - width, box[2] + width, box[3] + width)
    return any(_centre_inside(face, around) for face in faces)


class Cascade:
    """Find faces in a picture with BlazeFace short range and (optionally) YuNet proposals."""

    def __init__(
        self,
        detector: InferenceModel,
        variant: DetectorConfig,
        proposer: InferenceModel | None,
        config: DetectionConfig,
    ) -> None:
        """Use a BlazeFace ``detector`` of ``variant`` and YuNet (``proposer``, None: off)."""
        self._detector = detector
        self._variant = variant
        self._proposer = proposer
        self._anchors = ssd_anchors(variant)
        self.config = config

    def _blazeface(self, image: np.ndarray) -> list[Detection]:
        return detect_faces(self._detector.run, image, self._variant, self._anchors)

    def find(self, picture: Picture) -> Found:
        """Return every face of ``picture`` in frame pixels, best first."""
        small = self.detection_picture(picture)
        side = max(small.pixels.shape[:2])
        whole = [
            (_to_frame(found, small), (found.box[2] - found.box[0]) / side)
            for found in self._blazeface(small.pixels)
        ]
        if self._proposer is None:
            return Found(merge_detections([d for d, _ in whole], OVERLAP), crowded=False)
        proposals = self._propose(small)
        boxes = [proposal.box for proposal in proposals]
        seen: list[Detection] = []
        scale = max(small.scale)
        dropped: list[Detection] = []  # close-ups YuNet did not see: ghosts, or a hidden face
        for found, share in whole:
            index = same_face(found.box, boxes)
            too_big = (found.box[2] - found.box[0]) * scale >= YUNET_LARGEST
            if share >= WELL_SEEN and (index is not None or too_big):
                landmarks = None if index is None else proposals[index].landmarks
                seen.append(replace(found, landmarks=landmarks))
            elif share >= WELL_SEEN:
                dropped.append(found)
        candidates = sorted(
            (
                _Candidate(p.box, p.score, p.landmarks)
                for p in proposals
                if same_face(p.box, [d.box for d in seen]) is None
            ),
            key=lambda c: -c.score,
        )
        finer = max(picture.scale) > scale  # the crops have more pixels than the proposals
        refined = [
            self._refine(picture, c, finer and (c.box[2] - c.box[0]) * scale < FINE_LANDMARKS_BELOW)
            for c in candidates[:MAX_REFINES]
        ]
        confirmed = [d for d in refined if d is not None]
        faces = merge_detections(seen + confirmed, OVERLAP)
        boxes = [face.box for face in faces]
        unconfirmed = sum(
            1
            for candidate, found in zip(candidates, refined, strict=False)
            if same_face(candidate.box, boxes) is None
            and (
                (
                    found is None
                    and (candidate.score >= UNCONFIRMED_SCORE or near(candidate.box, boxes))
                )
                # confirmed or not: BlazeFace may find the print inside it again
                or surrounds(candidate.box, boxes)
            )
        )
        unconfirmed += sum(
            1 for d in dropped if same_face(d.box, boxes) is None and near(d.box, boxes)
        )
        return Found(faces, len(candidates) > MAX_REFINES, unconfirmed)

    def detection_picture(self, picture: Picture) -> Picture:
        """Return the detection picture: ``picture`` reduced to the tier's pixels for its colour.

        BlazeFace's whole-picture pass sees it too: letterboxed into 128 px, a larger picture
        only costs more resampling.
        """
        config = self.config
        gray = is_gray(picture.pixels)
        if gray:
            return shrink(picture, config.gray_detect_pixels, config.gray_resample)
        return shrink(picture, config.detect_pixels, config.resample)

    def _propose(self, small: Picture) -> list[Proposal]:
        """YuNet's faces on the detection picture ``small``, in frame pixels."""
        if self._proposer is None:
            return []
        model = self._proposer
        return [
            Proposal(
                _box(small.to_frame(np.asarray(p.box).reshape(2, 2))),
                small.to_frame(p.landmarks),
                p.score,
            )
            for p in propose(model.run, model.output_names, small.pixels, self.config.min_score)
        ]

    def _refine(
        self, picture: Picture, candidate: _Candidate, fine_landmarks: bool
    ) -> Detection | None:
        """BlazeFace on a square crop of ``picture`` around a candidate; frame pixels.

        ``fine_landmarks``: YuNet's points again, on the crop.
        """
        corners = picture.to_picture(np.asarray(candidate.box).reshape(2, 2))
        centre = corners.mean(axis=0)
        half = float((corners[1] - corners[0]).max()) / FACE_IN_CROP / 2
        height, width = picture.pixels.shape[:2]
        x0 = max(0, math.floor(centre[0] - half))
        y0 = max(0, math.floor(centre[1] - half))
        x1 = min(width, math.ceil(centre[0] + half))
        y1 = min(height, math.ceil(centre[1] + half))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        crop = np.ascontiguousarray(picture.pixels[y0:y1, x0:x1])
        best = None
        for found in self._blazeface(crop):
            in_frame = _to_frame(_shift(found, x0, y0), picture)
            # the same face, not a smaller one inside it (a print held over the face)
            if same_face(in_frame.box, [candidate.box]) == 0 and (
                best is None or in_frame.score > best.score
            ):
                best = in_frame
        if best is None:
            return None
        landmarks = candidate.landmarks
        if fine_landmarks and landmarks is not None:
            landmarks = self._fine_landmarks(crop, (x0, y0), picture, candidate.box, landmarks)
        return replace(best, landmarks=landmarks)

    def _fine_landmarks(
        self,
        crop: np.ndarray,
        corner: tuple[int, int],
        picture: Picture,
        box: tuple[float, float, float, float],
        first: np.ndarray,
    ) -> np.ndarray:
        """Return YuNet's five points of the face in ``crop`` in frame pixels, else ``first``.

        The crop's face must be the proposal's: its box overlaps the proposal's by
        :data:`SAME_BOX` and none of its points is :data:`AGREE` face widths from the first
        ones, so the finer points sharpen that face and never move to another (a print held
        over it). 98-99.6 % of the door frames' faces pass (48-144 px, balanced and fast).
        """
        assert self._proposer is not None
        model = self._proposer
        reach = AGREE * (box[2] - box[0])
        for proposal in propose(model.run, model.output_names, crop, self.config.min_score):
            found = picture.to_frame(np.asarray(proposal.box).reshape(2, 2) + corner).ravel()
            points = picture.to_frame(proposal.landmarks + np.asarray(corner))
            if (
                iou(np.asarray(box), found[np.newaxis])[0] >= SAME_BOX
                and float(np.linalg.norm(points - first, axis=1).max()) <= reach
            ):
                return points  # proposals come best first
        return first


def _box(corners: np.ndarray) -> tuple[float, float, float, float]:
    return (float(corners[0, 0]), float(corners[0, 1]), float(corners[1, 0]), float(corners[1, 1]))


def _shift(detection: Detection, x0: int, y0: int) -> Detection:
    """Move a detection found in a crop whose corner is (x0, y0) back into the picture."""
    box = detection.box
    return replace(
        detection,
        box=(box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0),
        keypoints=detection.keypoints + np.array([x0, y0]),
    )


def _to_frame(detection: Detection, picture: Picture) -> Detection:
    """Map a detection in picture pixels to frame pixels."""
    corners = picture.to_frame(np.asarray(detection.box).reshape(2, 2))
    return replace(detection, box=_box(corners), keypoints=picture.to_frame(detection.keypoints))

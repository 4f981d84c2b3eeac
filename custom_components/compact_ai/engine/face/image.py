"""Safe image decoding: bytes from a camera or an upload -> an RGB uint8 array.

Every failure (empty, corrupt, truncated, too small, too many pixels) becomes an
:class:`ImageDecodeError`; nothing here lets a Pillow exception escape or decodes an image
whose header promises more than :data:`MAX_PIXELS` pixels.

A camera frame need not be decoded whole: :func:`decode_picture` decodes a JPEG at the
smallest DCT scale (1, 1/2, 1/4, 1/8) that still has the pixels the caller needs (Pillow's
``draft``: a 1080p snapshot at 1/2 costs a third of a full decode), and reduces other formats
by an integer box filter after decoding. Pixel ``i`` of a picture reduced by ``k`` covers frame
pixels ``i*k .. i*k+k-1``, so with pixel ``i`` spanning ``[i, i+1)`` a frame point is exactly
the picture point divided by the picture's scale.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageDecodeError

MAX_PIXELS: Final = 40_000_000  # a 40 MP frame is larger than any camera snapshot we expect
MIN_SIDE: Final = 16  # below this no face the detector can find fits in the picture
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SWAPS_AXES: Final = frozenset({5, 6, 7, 8})  # EXIF orientations that turn by 90 degrees
GRAY_TOLERANCE: Final = 2.0  # mean |R-G| + |B-G| of a frame without colour (IR at night)
RESAMPLERS: Final = {  # how a picture is shrunk for detection (a tier's ``resample``)
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True, slots=True)
class Picture:
    """An upright RGB frame, whole or reduced: frame point = picture point / ``scale``."""

    pixels: np.ndarray  # (h, w, 3) uint8, C-contiguous
    scale: tuple[float, float]  # picture pixels per frame pixel, (x, y)
    frame_size: tuple[int, int]  # (width, height) of the upright frame

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map picture coordinates (..., 2) to frame coordinates."""
        frame: np.ndarray = np.asarray(points, dtype=np.float64) / np.asarray(self.scale)
        return frame

    def to_picture(self, points: np.ndarray) -> np.ndarray:
        """Map frame coordinates (..., 2) to picture coordinates."""
        picture: np.ndarray = np.asarray(points, dtype=np.float64) * np.asarray(self.scale)
        return picture


def _to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` in mode RGB; transparent pixels are composited over white."""
    if image.mode == "RGB":
        return image
    if image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.uint16) >> 8
        return Image.fromarray(wide.astype(np.uint8)).convert("RGB")
    if image.mode in ("I", "F"):
        clipped = np.clip(np.asarray(image, dtype=np.float64), 0, 255)
        return Image.fromarray(clipped.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """Refuse, from the header's size alone, an image too large or too small to use."""
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"the image has {width}x{height} pixels, more than the {max_pixels:,} allowed"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageDecodeError(f"the image is too small ({width}x{height} pixels)")


def _reduction(width: int, height: int, min_pixels: int | None) -> float:
    """Return the scale (at most 1) that leaves ``min_pixels`` of a width x height frame."""
    if min_pixels is None or width * height <= min_pixels:
        return 1.0
    return math.sqrt(min_pixels / (width * height))


def _decode(image: Image.Image, min_pixels: int | None) -> Picture:
    """Decode an opened image at the least scale keeping ``min_pixels``, upright, in RGB."""
    width, height = image.size
    scale = _reduction(width, height, min_pixels)
    factor = 1.0
    if scale < 1.0 and image.format == "JPEG":
        wanted = (math.ceil(width * scale), math.ceil(height * scale))
        drafted = image.draft(image.mode, wanted)  # the DCT scale is chosen before decoding
        if drafted is not None:
            factor = drafted[1][2] / width
    image.load()
    orientation = image.getexif().get(0x0112, 1)
    upright = _to_rgb(ImageOps.exif_transpose(image))
    if factor == 1.0 and scale < 1.0:
        step = int(1.0 / scale)  # an integer box reduce keeps at least min_pixels
        if step >= 2:
            upright = upright.reduce(step)
            factor = 1.0 / step
    size = (height, width) if orientation in _SWAPS_AXES else (width, height)
    pixels = np.ascontiguousarray(np.asarray(upright, dtype=np.uint8))
    return Picture(pixels, (factor, factor), size)


def decode_picture(
    data: bytes, min_pixels: int | None = None, max_pixels: int = MAX_PIXELS
) -> Picture:
    """Decode ``data`` upright in RGB, reduced as far as keeps ``min_pixels`` (None: whole)."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size  # header only: nothing is decoded yet
            _check_size(width, height, max_pixels)
            return _decode(image, min_pixels)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"the image is too large to decode safely: {err}") from err
    except Exception as err:  # Pillow's plugins raise many types on malformed input
        raise ImageDecodeError(f"the image cannot be decoded: {err}") from err


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``data`` into an upright (EXIF-rotated) RGB array of shape (H, W, 3), uint8."""
    return decode_picture(data, None, max_pixels).pixels


def shrink(picture: Picture, max_pixels: int, resample: str = "bilinear") -> Picture:
    """Return ``picture`` resized to at most ``max_pixels`` pixels with a :data:`RESAMPLERS` filter.

    Bilinear antialiases best and costs most (4 ms for a 960x540 picture to 640x360 on one x86
    core); ``box`` averages whole blocks first (2x: a 2x2 mean, 0.5 ms); ``nearest`` picks
    pixels (0.2 ms) while the picture shrinks by less than 2x, and is ``box`` beyond: picking
    one pixel of each 2x2 would drop three and move every point by half a pixel.
    """
    height, width = picture.pixels.shape[:2]
    scale = _reduction(width, height, max_pixels)
    if scale >= 1.0:
        return picture
    size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
    if resample == "nearest" and scale <= 0.5:
        resample = "box"
    gap = 1.0 if resample == "box" else None  # Pillow's reduce() for the whole factors
    resized = Image.fromarray(picture.pixels).resize(size, RESAMPLERS[resample], reducing_gap=gap)
    sx, sy = picture.scale
    return Picture(
        np.ascontiguousarray(np.asarray(resized)),
        (sx * size[0] / width, sy * size[1] / height),
        picture.frame_size,
    )


def is_gray(pixels: np.ndarray) -> bool:
    """Whether an RGB picture carries no colour (a night IR frame, a grey JPEG)."""
    sample = pixels[::4, ::4].astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 2] - sample[..., 1])
    return bool(spread.mean() <= GRAY_TOLERANCE)

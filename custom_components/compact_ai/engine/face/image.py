"""Safe image decoding: bytes from a camera or an upload -> an RGB uint8 array.

Every failure (empty, corrupt, truncated, too small, too many pixels) becomes an
:class:`ImageDecodeError`; nothing here lets a Pillow exception escape or decodes an image
whose header promises more than :data:`MAX_PIXELS` pixels.
"""

from __future__ import annotations

import io
from typing import Final

import numpy as np
from PIL import Image, ImageOps

from ..errors import ImageDecodeError

MAX_PIXELS: Final = 40_000_000  # a 40 MP frame is larger than any camera snapshot we expect
MIN_SIDE: Final = 16  # below this no face the detector can find fits in the picture
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


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


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode ``data`` into an upright (EXIF-rotated) RGB array of shape (H, W, 3), uint8."""
    if not data:
        raise ImageDecodeError("the image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size  # header only: nothing is decoded yet
            _check_size(width, height, max_pixels)
            image.load()
            upright = ImageOps.exif_transpose(image)
            array = np.asarray(_to_rgb(upright), dtype=np.uint8)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageDecodeError(f"the image is too large to decode safely: {err}") from err
    except Exception as err:  # Pillow's plugins raise many types on malformed input
        raise ImageDecodeError(f"the image cannot be decoded: {err}") from err
    return np.ascontiguousarray(array)

"""Safe image decoding: real photos, every colour mode, and broken or hostile files."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from custom_components.compact_ai.engine.errors import ImageDecodeError
from custom_components.compact_ai.engine.face.image import MAX_PIXELS, decode_image
from tools.compact.pack.sources import source_path


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(source_path("astronaut.png")).convert("RGB")


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header promises width x height RGB pixels, with one tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_png_photo_decodes_to_rgb_uint8() -> None:
    array = decode_image(source_path("astronaut.png").read_bytes())
    assert array.shape == (512, 512, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous
    expected = np.asarray(Image.open(source_path("astronaut.png")).convert("RGB"))
    np.testing.assert_array_equal(array, expected)


def test_jpeg_photo_decodes() -> None:
    array = decode_image(source_path("t1.jpg").read_bytes())
    assert array.shape == (886, 1280, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not an image at all, just text" * 10, "cannot be decoded"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, "cannot be decoded"),
    ],
)
def test_garbage_is_a_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(ImageDecodeError, match=message):
        decode_image(data)


def test_truncated_jpeg_is_a_decode_error(astronaut: Image.Image) -> None:
    data = _encode(astronaut, "JPEG", quality=90)
    with pytest.raises(ImageDecodeError, match="cannot be decoded"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_a_decode_error(astronaut: Image.Image) -> None:
    data = _encode(astronaut, "PNG")
    with pytest.raises(ImageDecodeError):
        decode_image(data[: len(data) // 3])


def test_one_pixel_image_is_too_small() -> None:
    with pytest.raises(ImageDecodeError, match="too small"):
        decode_image(_encode(Image.new("RGB", (1, 1)), "PNG"))


@pytest.mark.parametrize(("width", "height"), [(8000, 6000), (100_000, 100_000)])
def test_decompression_bomb_header_is_refused_fast(width: int, height: int) -> None:
    # 48 MP is over our limit; 10 GP is over Pillow's own DecompressionBombError limit too.
    assert width * height > MAX_PIXELS
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=r"too large|pixels"):
        decode_image(_png_header_only(width, height))
    assert time.perf_counter() - start < 1.0


def test_pixel_limit_is_configurable(astronaut: Image.Image) -> None:
    data = _encode(astronaut, "PNG")
    with pytest.raises(ImageDecodeError, match="more than the 100,000 allowed"):
        decode_image(data, max_pixels=100_000)


def test_cmyk_jpeg_becomes_rgb(astronaut: Image.Image) -> None:
    array = decode_image(_encode(astronaut.convert("CMYK"), "JPEG", quality=95))
    assert array.shape == (512, 512, 3)
    difference = np.abs(array.astype(float) - np.asarray(astronaut, dtype=float)).mean()
    assert difference < 8


def test_grayscale_becomes_three_equal_channels(astronaut: Image.Image) -> None:
    array = decode_image(_encode(astronaut.convert("L"), "PNG"))
    assert array.shape == (512, 512, 3)
    assert np.array_equal(array[..., 0], array[..., 1])
    assert np.array_equal(array[..., 1], array[..., 2])


def test_sixteen_bit_grayscale_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    array = decode_image(_encode(Image.fromarray(ramp), "PNG"))
    assert array[0, 0, 0] == 0
    assert array[0, -1, 0] == 255
    assert 100 < array[0, 32, 0] < 160


def test_transparency_is_composited_over_white(astronaut: Image.Image) -> None:
    rgba = astronaut.convert("RGBA")
    alpha = np.full((512, 512), 255, dtype=np.uint8)
    alpha[:, :256] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    array = decode_image(_encode(rgba, "PNG"))
    assert array.shape == (512, 512, 3)
    assert np.all(array[:, :256] == 255)
    np.testing.assert_array_equal(array[:, 256:], np.asarray(astronaut)[:, 256:])


def test_palette_image_becomes_rgb(astronaut: Image.Image) -> None:
    palette = astronaut.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    array = decode_image(_encode(palette, "PNG"))
    np.testing.assert_array_equal(array, np.asarray(palette.convert("RGB")))


@pytest.mark.parametrize(
    ("orientation", "stored"),
    [
        (6, Image.Transpose.ROTATE_90),
        (8, Image.Transpose.ROTATE_270),
        (3, Image.Transpose.ROTATE_180),
    ],
)
def test_exif_orientation_is_applied(
    astronaut: Image.Image, orientation: int, stored: Image.Transpose
) -> None:
    # Store the pixels turned, with the EXIF tag that tells viewers how to turn them back.
    turned = astronaut.transpose(stored)
    exif = Image.Exif()
    exif[0x0112] = orientation
    array = decode_image(_encode(turned, "JPEG", quality=95, exif=exif.tobytes()))
    assert array.shape == (512, 512, 3)
    difference = np.abs(array.astype(float) - np.asarray(astronaut, dtype=float)).mean()
    assert difference < 4  # upright again (JPEG noise only); unturned it would be ~60

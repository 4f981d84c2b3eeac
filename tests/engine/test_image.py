"""Safe image decoding: real photos, every colour mode, and broken or hostile files."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from custom_components.compact_ai.engine.errors import ImageDecodeError
from custom_components.compact_ai.engine.face.image import (
    MAX_PIXELS,
    RESAMPLERS,
    Picture,
    decode_image,
    decode_picture,
    is_gray,
    shrink,
)
from tests.images import png_header_only
from tools.compact.pack.sources import source_path


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(source_path("astronaut.png")).convert("RGB")


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


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
        decode_image(png_header_only(width, height))
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


# --- decoding at reduced scale -----------------------------------------------------------


def _frame(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth colour frame (JPEG-friendly) of the given size."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.005, 0.02, 2)
    planes = [128 + 100 * np.sin(a * xs + b * ys + phase) for phase in (0.0, 2.0, 4.0)]
    return Image.fromarray(np.stack(planes, axis=-1).astype(np.uint8))


@pytest.mark.parametrize(
    ("size", "need", "scale"),
    [
        ((1920, 1080), 960 * 540, 0.5),  # exactly half: the DCT decodes at 1/2
        ((1920, 1080), 960 * 540 + 1, 1.0),  # one pixel more than half: whole
        ((3840, 2160), 960 * 540, 0.25),
        ((1920, 1080), 100, 0.125),  # the smallest DCT scale
        ((640, 480), 960 * 540, 1.0),  # smaller than asked: never enlarged
    ],
)
def test_jpeg_is_decoded_at_the_least_dct_scale_keeping_the_pixels(
    size: tuple[int, int], need: int, scale: float
) -> None:
    data = _encode(_frame(*size), "JPEG", quality=90)
    picture = decode_picture(data, need)
    assert picture.scale == (scale, scale)
    assert picture.frame_size == size
    assert picture.pixels.shape == (round(size[1] * scale), round(size[0] * scale), 3)
    assert picture.pixels.shape[0] * picture.pixels.shape[1] >= min(need, size[0] * size[1])
    whole = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").reduce(round(1 / scale)))
    assert np.abs(picture.pixels.astype(float) - whole).mean() < 3  # the same picture


def test_png_is_box_reduced_by_an_integer_factor() -> None:
    frame = _frame(1000, 600)
    picture = decode_picture(_encode(frame, "PNG"), 200 * 120)
    assert picture.scale == (0.2, 0.2)
    np.testing.assert_array_equal(picture.pixels, np.asarray(frame.reduce(5)))


def test_points_map_between_picture_and_frame() -> None:
    picture = decode_picture(_encode(_frame(1920, 1080), "JPEG"), 480 * 270)
    points = np.array([[10.0, 20.0], [479.5, 269.5]])
    np.testing.assert_allclose(picture.to_frame(points), points * 4)
    np.testing.assert_allclose(picture.to_picture(picture.to_frame(points)), points)


def test_reduced_decode_turns_exif_orientation_upright(astronaut: Image.Image) -> None:
    big = astronaut.resize((1024, 1024))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = big.crop((0, 0, 1024, 768)).transpose(Image.Transpose.ROTATE_90)  # 768x1024 stored
    picture = decode_picture(_encode(stored, "JPEG", quality=95, exif=exif.tobytes()), 256 * 192)
    assert picture.frame_size == (1024, 768)
    assert picture.pixels.shape == (192, 256, 3)
    upright = np.asarray(big.crop((0, 0, 1024, 768)).reduce(4), dtype=float)
    assert np.abs(picture.pixels - upright).mean() < 6


def test_shrink_resizes_to_the_pixel_count_and_keeps_the_mapping() -> None:
    picture = decode_picture(_encode(_frame(1920, 1080), "JPEG"), 960 * 540)
    small = shrink(picture, 640 * 360)
    assert small.pixels.shape == (360, 640, 3)
    np.testing.assert_allclose(small.scale, (1 / 3, 1 / 3))
    assert small.frame_size == (1920, 1080)
    assert shrink(small, 10**7) is small  # never enlarged


def test_each_resampler_keeps_the_mapping_and_means_what_it_says() -> None:
    picture = decode_picture(_encode(_frame(1920, 1080), "JPEG"), 960 * 540)
    pixels = picture.pixels
    for resample in RESAMPLERS:
        small = shrink(picture, 640 * 360, resample)
        assert small.pixels.shape == (360, 640, 3), resample
        np.testing.assert_allclose(small.scale, (1 / 3, 1 / 3))
    # nearest: each pixel is the half-scale picture's pixel under its centre, unfiltered
    nearest = shrink(picture, 640 * 360, "nearest").pixels
    rows, cols = (np.floor((np.arange(n) + 0.5) * 1.5).astype(int) for n in (360, 640))
    np.testing.assert_array_equal(nearest, pixels[rows][:, cols])
    # box at a whole factor: the mean of each 2x2 block (Pillow rounds it)
    box = shrink(picture, 480 * 270, "box").pixels.astype(float)
    blocks = pixels.reshape(270, 2, 480, 2, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(box - blocks).max() <= 0.5 + 1e-9
    # nearest picks only within 2x: beyond, it averages like box (no pixel dropped, no shift)
    half = Picture(pixels, picture.scale, picture.frame_size)
    np.testing.assert_array_equal(
        shrink(half, 480 * 270, "nearest").pixels, shrink(half, 480 * 270, "box").pixels
    )


@pytest.mark.parametrize(
    ("mode", "gray"), [("RGB", False), ("L", True), ("CMYK", False), ("P", False)]
)
def test_every_jpeg_or_png_mode_decodes_reduced(
    astronaut: Image.Image, mode: str, gray: bool
) -> None:
    big = astronaut.resize((1024, 1024)).convert(mode)
    fmt = "PNG" if mode == "P" else "JPEG"
    picture = decode_picture(_encode(big, fmt), 512 * 512)
    assert picture.pixels.shape == (512, 512, 3)
    assert is_gray(picture.pixels) == gray


def test_sixteen_bit_png_decodes_reduced() -> None:
    ramp = np.tile(np.linspace(0, 65535, 640).astype(np.uint16), (480, 1))
    picture = decode_picture(_encode(Image.fromarray(ramp), "PNG"), 320 * 240)
    assert picture.pixels.shape == (240, 320, 3)
    assert picture.pixels[0, 0, 0] < 2 and picture.pixels[0, -1, 0] > 253
    assert is_gray(picture.pixels)


def test_a_truncated_jpeg_is_a_decode_error_at_reduced_scale() -> None:
    data = _encode(_frame(1920, 1080), "JPEG", quality=90)
    with pytest.raises(ImageDecodeError, match="cannot be decoded"):
        decode_picture(data[: len(data) // 2], 960 * 540)


def test_a_huge_panorama_decodes_small() -> None:
    tile = np.asarray(_frame(1000, 500))
    data = _encode(Image.fromarray(np.tile(tile, (4, 16, 1))), "JPEG", quality=80)  # 16000x2000
    picture = decode_picture(data, 960 * 540)
    assert picture.pixels.shape == (500, 4000, 3)  # 1/4 (1/8 would be under 960x540 pixels)
    assert picture.frame_size == (16000, 2000)


def test_a_colour_frame_with_a_grey_tint_is_not_grey() -> None:
    gray = np.asarray(_frame(320, 240).convert("L").convert("RGB"))
    assert is_gray(gray)
    tinted = gray.copy()
    tinted[..., 2] = np.clip(tinted[..., 2].astype(int) + 12, 0, 255)
    assert not is_gray(tinted)

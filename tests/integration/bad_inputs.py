"""Malformed inputs for the bad-input corpus, generated at test time (nothing binary is kept).

Each writer puts one input at a path; large inputs are sparse files (holes use no disk).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

from PIL import Image

from tools.compact.pack.sources import source_path

Writer = Callable[[Path], None]


@cache
def _photo(name: str) -> Image.Image:
    return Image.open(source_path(name)).convert("RGB")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _bytes(make: Callable[[], bytes]) -> Writer:
    return lambda path: path.write_bytes(make())


def _sparse(size: int, head: bytes = b"") -> Writer:
    def write(path: Path) -> None:
        with path.open("wb") as out:
            out.write(head)
            out.truncate(size)

    return write


def _png_claiming(width: int, height: int) -> bytes:
    """A valid 16x16 PNG whose header claims ``width`` x ``height`` (CRC fixed)."""
    data = bytearray(_encoded(Image.new("L", (16, 16)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _png_text_bomb() -> bytes:
    """A PNG with a zTXt chunk that inflates to 64 MiB."""
    data = _encoded(Image.new("L", (16, 16)), "PNG")
    body = b"zTXt" + b"Comment\x00\x00" + zlib.compress(bytes(64 << 20), 9)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:33] + chunk + data[33:]


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encoded(Image.new("P", (16, 16)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def _with_exif(orientation: int, description: str = "") -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    if description:
        exif[0x010E] = description
    image = _photo("astronaut.png").rotate(90 if orientation == 6 else 0, expand=True)
    return _encoded(image, "JPEG", exif=exif.tobytes(), quality=90)


def _animated(fmt: str) -> bytes:
    frames = [_photo("coffee.png"), _photo("astronaut.png").resize(_photo("coffee.png").size)]
    return _encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)


# (id, file name, writer, what enrolling it gives: a reason, "enrolled", or an error key)
IMAGES: list[tuple[str, str, Writer, str]] = [
    ("zero-byte", "empty.jpg", _bytes(lambda: b""), "bad_image"),
    ("text-as-jpeg", "note.jpg", _bytes(lambda: b"hello, not a picture"), "bad_image"),
    ("random-bytes", "noise.jpg", _bytes(lambda: bytes(range(256)) * 64), "bad_image"),
    ("heic-brand", "photo.heic", _bytes(lambda: b"\0\0\0\x18ftypheic" + bytes(4000)), "bad_image"),
    (
        "svg",
        "drawing.svg",
        _bytes(lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        "bad_image",
    ),
    (
        "truncated-jpeg",
        "cut.jpg",
        _bytes(lambda: _encoded(_photo("astronaut.png"), "JPEG")[:20_000]),
        "bad_image",
    ),
    (
        "truncated-png",
        "cut.png",
        _bytes(lambda: _encoded(_photo("astronaut.png"), "PNG")[:50_000]),
        "bad_image",
    ),
    ("1x1", "dot.png", _bytes(lambda: _encoded(Image.new("RGB", (1, 1)), "PNG")), "bad_image"),
    (
        "50000x1",
        "line.png",
        _bytes(lambda: _encoded(Image.new("L", (50_000, 1)), "PNG")),
        "bad_image",
    ),
    (
        "16000x2000",
        "panorama.jpg",
        _bytes(lambda: _encoded(Image.new("RGB", (16_000, 2_000), (90, 120, 150)), "JPEG")),
        "no_face",
    ),
    ("png-bomb-header", "bomb.png", _bytes(lambda: _png_claiming(100_000, 100_000)), "bad_image"),
    ("png-text-bomb", "text-bomb.png", _bytes(_png_text_bomb), "bad_image"),
    ("gif-bomb-header", "bomb.gif", _bytes(lambda: _gif_claiming(65_535, 65_535)), "bad_image"),
    ("over-25-mib", "huge.jpg", _sparse(26 << 20, b"\xff\xd8\xff"), "file_too_large"),
    (
        "cmyk-jpeg",
        "cmyk.jpg",
        _bytes(lambda: _encoded(_photo("astronaut.png").convert("CMYK"), "JPEG")),
        "enrolled",
    ),
    (
        "16-bit-gray",
        "deep.png",
        _bytes(lambda: _encoded(_photo("coffee.png").convert("I;16"), "PNG")),
        "no_face",
    ),
    (
        "paletted",
        "palette.png",
        _bytes(lambda: _encoded(_photo("astronaut.png").quantize(64), "PNG")),
        "enrolled",
    ),
    ("animated-gif", "moving.gif", _bytes(lambda: _animated("GIF")), "no_face"),
    ("animated-png", "moving.png", _bytes(lambda: _animated("PNG")), "no_face"),
    (
        "png-named-jpg",
        "really-png.jpg",
        _bytes(lambda: _encoded(_photo("astronaut.png"), "PNG")),
        "enrolled",
    ),
    ("exif-rotated", "rotated.jpg", _bytes(lambda: _with_exif(6)), "enrolled"),
    ("exif-orientation-9", "odd-exif.jpg", _bytes(lambda: _with_exif(9)), "enrolled"),
    ("exif-long-text", "long-exif.jpg", _bytes(lambda: _with_exif(1, "A" * 60_000)), "enrolled"),
]


def _wav(
    *,
    tag: int = 1,
    channels: int = 1,
    rate: int = 16_000,
    bits: int = 16,
    data: bytes = bytes(32_000),
    data_size: int | None = None,
    riff_size: int | None = None,
    byte_rate: int | None = None,
    align: int | None = None,
    before: bytes = b"",
) -> bytes:
    """A WAV written by hand, so any header field can lie."""
    align = channels * bits // 8 if align is None else align
    byte_rate = rate * align if byte_rate is None else byte_rate
    fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + before + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", size) + data
    riff = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", riff) + body


def _sparse_wav(fmt: bytes, junk: int, data: int, payload: bytes = b"") -> Writer:
    def write(path: Path) -> None:
        with path.open("wb") as out:
            out.write(b"RIFF\xff\xff\xff\xffWAVE")
            if junk:
                out.write(b"JUNK" + struct.pack("<I", junk))
                out.seek(junk, 1)
            out.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
            out.write(b"data" + struct.pack("<I", data) + payload)
            out.truncate(out.tell() + data - len(payload))

    return write


_FLOAT_SPECIALS = struct.pack("<4f", float("nan"), float("inf"), float("-inf"), 0.0) * 4000
_MONO_FMT = struct.pack("<HHIIHH", 1, 1, 16_000, 32_000, 2, 16)
_HUGE_FMT = struct.pack("<HHIIHH", 3, 32, 768_000, 768_000 * 256, 256, 64)

# (id, writer, what add_voice_recording gives: an error key)
AUDIO: list[tuple[str, Writer, str]] = [
    ("zero-byte", _bytes(lambda: b""), "bad_audio"),
    ("riff-header-only", _bytes(lambda: b"RIFF\x04\x00\x00\x00WAVE"), "bad_audio"),
    ("random-bytes", _bytes(lambda: bytes(range(256)) * 100), "bad_audio"),
    ("mp3-id3", _bytes(lambda: b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(4000)), "bad_audio"),
    ("0-channels", _bytes(lambda: _wav(channels=0, align=2)), "bad_audio"),
    ("64-channels", _bytes(lambda: _wav(channels=64)), "bad_audio"),
    ("rate-0", _bytes(lambda: _wav(rate=0, byte_rate=0)), "bad_audio"),
    ("12-bit", _bytes(lambda: _wav(bits=12, align=2)), "bad_audio"),
    ("a-law", _bytes(lambda: _wav(tag=6, bits=8)), "bad_audio"),
    ("mu-law", _bytes(lambda: _wav(tag=7, bits=8)), "bad_audio"),
    ("ms-adpcm", _bytes(lambda: _wav(tag=2, bits=4, align=256)), "bad_audio"),
    ("byte-rate-lie", _bytes(lambda: _wav(byte_rate=12_345)), "bad_audio"),
    ("block-align-lie", _bytes(lambda: _wav(align=7)), "bad_audio"),
    (
        "data-before-fmt",
        _bytes(lambda: b"RIFF\x00\x01\x00\x00WAVEdata\x04\x00\x00\x00" + bytes(4) + bytes(40)),
        "bad_audio",
    ),
    ("chunk-past-the-end", _bytes(lambda: _wav(before=b"LIST\xff\xff\xff\x7f")), "bad_audio"),
    (
        "fmt-of-4-kib",
        _bytes(lambda: b"RIFF\0\0\0\0WAVEfmt \x00\x10\0\0" + bytes(4200)),
        "bad_audio",
    ),
    ("100-chunks", _bytes(lambda: _wav(before=b"LIST\x00\x00\x00\x00" * 100)), "bad_audio"),
    ("riff-size-lie", _bytes(lambda: _wav(riff_size=0xFFFFFFFF)), "no_speech"),
    ("10-hours-declared", _bytes(lambda: _wav(data_size=10 * 3600 * 32_000)), "no_speech"),
    ("data-cut-short", _bytes(lambda: _wav(data=bytes(100), data_size=32_000)), "no_speech"),
    ("300-mib-junk-chunk", _sparse_wav(_MONO_FMT, 300 << 20, 32_000), "no_speech"),
    ("768-khz-32-ch-float64", _sparse_wav(_HUGE_FMT, 0, 64 << 20), "no_speech"),
    ("8-bit", _bytes(lambda: _wav(bits=8, data=b"\x80" * 16_000)), "no_speech"),
    ("float-nan-inf", _bytes(lambda: _wav(tag=3, bits=32, data=_FLOAT_SPECIALS)), "no_speech"),
    ("float64", _bytes(lambda: _wav(tag=3, bits=64, data=bytes(128_000))), "no_speech"),
]

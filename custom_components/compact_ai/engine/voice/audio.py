"""Audio input for voice commands: WAV bytes -> 16 kHz mono int16, and finding the speech.

:func:`decode_wav` parses the RIFF container itself (PCM 8/16/24/32-bit, IEEE float 32/64,
plain or ``WAVE_FORMAT_EXTENSIBLE``), downmixes to mono and resamples to 16 kHz with a
windowed-sinc polyphase filter (numpy only). Anything else (mu-law, ADPCM, MP3, garbage)
raises :class:`AudioFormatError`, and so does every header that lies about the file (a chunk
longer than what follows it, a byte rate or block size that does not match the format).
Chunks other than ``fmt `` and ``data`` are skipped with a seek, never read, and only the
first ``max_seconds`` of the samples are read, at most :data:`MAX_BYTES_PER_SECOND` raw
bytes per second of that window: a 10-minute upload, a 300 MiB ``JUNK`` chunk or a declared
768 kHz × 32-channel float64 stream cost no more memory than a short 48 kHz stereo clip.

:func:`speech_segment` is an energy voice-activity detector: it returns the loudest stretch
of speech-like activity in a stream, or ``None`` when there is none (silence, steady noise).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np

from ..errors import AudioFormatError

TARGET_RATE: Final = 16_000
MAX_SECONDS: Final = 30.0
FRAME: Final = 160  # 10 ms at 16 kHz: the VAD's frame

_PCM: Final = 1
_FLOAT: Final = 3
_EXTENSIBLE: Final = 0xFFFE
_KNOWN_CODECS: Final = {
    2: "MS ADPCM",
    6: "A-law",
    7: "mu-law",
    0x11: "IMA ADPCM",
    0x31: "GSM 6.10",
    0x50: "MPEG",
    0x55: "MP3",
    0xFF: "AAC",
}
_MAX_CHANNELS: Final = 32
_RATE_RANGE: Final = (1_000, 768_000)
_MAX_DENOMINATOR: Final = 1_000  # resampling ratio precision (< 1e-6 relative)
_SINC_ZEROS: Final = 16  # zero crossings of the sinc on each side
_KAISER_BETA: Final = 8.0
_ROLLOFF: Final = 0.94  # cutoff as a fraction of the lower Nyquist frequency
_BLOCK_VALUES: Final = 1 << 21  # gathered input values per resampling step (8 MiB)
# Raw bytes read per second of the window: 48 kHz stereo 32-bit reads its full window,
# higher rates or more channels read a shorter one.
MAX_BYTES_PER_SECOND: Final = 48_000 * 2 * 4
_MAX_FMT_BYTES: Final = 1_024  # a fmt chunk is 16-40 bytes; more is not a real header
_MAX_CHUNKS: Final = 64  # chunks before the data chunk


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded audio: ``samples`` are int16, mono, at :data:`TARGET_RATE`."""

    samples: np.ndarray
    source_rate: int
    source_channels: int
    truncated: bool  # the input was longer than the decoded window

    @property
    def seconds(self) -> float:
        """Return the decoded duration in seconds."""
        return len(self.samples) / TARGET_RATE


@dataclass(frozen=True, slots=True)
class _Format:
    tag: int
    channels: int
    rate: int
    bits: int
    block_align: int


def _codec_name(tag: int) -> str:
    return _KNOWN_CODECS.get(tag, f"format tag 0x{tag:04x}")


def _parse_fmt(chunk: bytes) -> _Format:
    if len(chunk) < 16:
        raise AudioFormatError("WAV fmt chunk is too short")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack("<HHIIHH", chunk[:16])
    if tag == _EXTENSIBLE:
        if len(chunk) < 40:
            raise AudioFormatError("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        tag = struct.unpack("<H", chunk[24:26])[0]  # first two bytes of the sub-format GUID
    if tag not in (_PCM, _FLOAT):
        raise AudioFormatError(f"unsupported WAV encoding: {_codec_name(tag)} (only PCM)")
    valid_bits = {_PCM: (8, 16, 24, 32), _FLOAT: (32, 64)}[tag]
    if bits not in valid_bits:
        raise AudioFormatError(f"unsupported sample size: {bits}-bit")
    if not 1 <= channels <= _MAX_CHANNELS:
        raise AudioFormatError(f"unsupported channel count: {channels}")
    if not _RATE_RANGE[0] <= rate <= _RATE_RANGE[1]:
        raise AudioFormatError(f"unsupported sample rate: {rate} Hz")
    if block_align != channels * bits // 8:
        raise AudioFormatError(f"inconsistent block align {block_align} for {channels}x{bits}")
    if byte_rate != rate * block_align:
        raise AudioFormatError(f"inconsistent byte rate {byte_rate} for {rate} Hz x {block_align}")
    return _Format(tag, channels, rate, bits, block_align)


def _remaining(stream: BinaryIO) -> int:
    """Return how many bytes follow the stream's position (seekable streams only)."""
    here = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(here)
    return end - here


def _find_chunks(stream: BinaryIO) -> tuple[_Format, int]:
    """Read the header up to the data chunk; return the format and the data chunk size.

    Other chunks are skipped with a seek (a huge ``JUNK`` or ``LIST`` chunk is never read);
    one that claims more bytes than the file has is an error, not a long read.
    """
    header = stream.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        raise AudioFormatError("not a WAV (RIFF/WAVE) file")
    fmt: _Format | None = None
    for _ in range(_MAX_CHUNKS):
        chunk_header = stream.read(8)
        if len(chunk_header) < 8:
            raise AudioFormatError("the WAV file has no data chunk")
        chunk_id, size = chunk_header[:4], struct.unpack("<I", chunk_header[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("the WAV data chunk comes before its fmt chunk")
            return fmt, size
        name = chunk_id.decode("latin-1")
        if size > _remaining(stream):
            raise AudioFormatError(f"the WAV file is truncated: its {name!r} chunk is cut off")
        if chunk_id == b"fmt ":
            if size > _MAX_FMT_BYTES:
                raise AudioFormatError(f"the WAV fmt chunk is too large ({size} bytes)")
            fmt = _parse_fmt(stream.read(size))
            stream.seek(size & 1, io.SEEK_CUR)
        else:
            stream.seek(size + (size & 1), io.SEEK_CUR)
    raise AudioFormatError(f"the WAV file has more than {_MAX_CHUNKS} chunks before its data")


def _to_float(raw: bytes, fmt: _Format) -> np.ndarray:
    """Interleaved sample bytes -> float32 array (frames, channels) in [-1, 1]."""
    frames = len(raw) // fmt.block_align
    raw = raw[: frames * fmt.block_align]
    if fmt.tag == _FLOAT:
        dtype = "<f4" if fmt.bits == 32 else "<f8"
        values = np.nan_to_num(np.frombuffer(raw, dtype=dtype), nan=0.0, posinf=1.0, neginf=-1.0)
        data = np.clip(values, -1.0, 1.0).astype(np.float32)
    elif fmt.bits == 8:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif fmt.bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        wide = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        data = (np.where(wide >= 1 << 23, wide - (1 << 24), wide) / float(1 << 23)).astype(
            np.float32
        )
    else:
        dtype = "<i2" if fmt.bits == 16 else "<i4"
        data = (np.frombuffer(raw, dtype=dtype) / float(1 << (fmt.bits - 1))).astype(np.float32)
    return np.asarray(data, dtype=np.float32).reshape(frames, fmt.channels)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16 (rounded, clipped)."""
    return np.clip(np.rint(samples * 32768.0), -32768, 32767).astype(np.int16)


@lru_cache(maxsize=16)
def _filter_bank(up: int, down: int) -> tuple[np.ndarray, int]:
    """Kaiser-windowed sinc taps, one row per output phase; return them and the half width."""
    cutoff = min(1.0, up / down) * _ROLLOFF  # in units of the input Nyquist frequency
    half = int(np.ceil(_SINC_ZEROS / cutoff))
    offsets = np.arange(-half + 1, half + 1)
    fractions = (np.arange(up) * down % up) / up
    tau = fractions[:, None] - offsets[None, :]
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (tau / half) ** 2, 0.0, 1.0)))
    taps = cutoff * np.sinc(cutoff * tau) * window / np.i0(_KAISER_BETA)
    taps /= taps.sum(axis=1, keepdims=True)  # unit gain at DC for every phase
    return taps.astype(np.float32), half


def resample(samples: np.ndarray, source_rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
    """Resample float32 mono ``samples`` with a polyphase windowed-sinc filter."""
    if source_rate == target_rate or len(samples) == 0:
        return samples.astype(np.float32)
    ratio = Fraction(target_rate, source_rate).limit_denominator(_MAX_DENOMINATOR)
    up, down = ratio.numerator, ratio.denominator
    taps, half = _filter_bank(up, down)
    padded = np.pad(samples.astype(np.float32), (half, half + 1))
    offsets = np.arange(-half + 1, half + 1) + half
    total = len(samples) * up // down
    out = np.empty(total, dtype=np.float32)
    block = max(1, _BLOCK_VALUES // len(offsets))  # a wide filter resamples fewer at a time
    for start in range(0, total, block):
        position = np.arange(start, min(start + block, total), dtype=np.int64) * down
        base, phase = position // up, position % up
        gathered = padded[base[:, None] + offsets[None, :]]
        out[start : start + len(position)] = np.einsum("ij,ij->i", gathered, taps[phase])
    return out


def _decode_stream(stream: BinaryIO, max_seconds: float) -> Audio:
    fmt, size = _find_chunks(stream)
    budget = int(max_seconds * MAX_BYTES_PER_SECOND)
    limit = min(int(max_seconds * fmt.rate), budget // fmt.block_align) * fmt.block_align
    raw = stream.read(min(size, limit))  # a short read (truncated file) keeps what is there
    truncated = size > limit and len(raw) == limit
    if fmt.tag == _PCM and fmt.bits == 16 and fmt.channels == 1 and fmt.rate == TARGET_RATE:
        samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
    else:
        frames = _to_float(raw, fmt)
        mono = frames.mean(axis=1) if fmt.channels > 1 else frames[:, 0]
        samples = to_int16(resample(mono, fmt.rate))
    return Audio(samples, fmt.rate, fmt.channels, truncated)


def decode_wav(data: bytes, max_seconds: float = MAX_SECONDS) -> Audio:
    """Decode WAV bytes into 16 kHz mono int16; raise :class:`AudioFormatError` if unusable."""
    if not data:
        raise AudioFormatError("the audio is empty (0 bytes)")
    return _decode_stream(io.BytesIO(data), max_seconds)


def read_wav(source: Path | BinaryIO, max_seconds: float = MAX_SECONDS) -> Audio:
    """Decode a WAV file (a path or a seekable binary file), reading a bounded window."""
    if not isinstance(source, Path):
        return _decode_stream(source, max_seconds)
    try:
        with source.open("rb") as stream:
            return _decode_stream(stream, max_seconds)
    except OSError as err:
        raise AudioFormatError(f"{source}: cannot be read ({err})") from err


def frame_levels(samples: np.ndarray) -> np.ndarray:
    """Return the level in dBFS of each 10 ms frame of int16 ``samples``."""
    frames = len(samples) // FRAME
    if frames == 0:
        return np.empty(0, dtype=np.float64)
    blocks = samples[: frames * FRAME].astype(np.float64).reshape(frames, FRAME) / 32768.0
    return np.asarray(10.0 * np.log10(np.mean(blocks**2, axis=1) + 1e-10), dtype=np.float64)


def speech_segment(
    samples: np.ndarray,
    *,
    above_floor_db: float = 12.0,
    min_level_dbfs: float = -55.0,
    max_gap: float = 0.3,
    min_length: float = 0.08,
) -> tuple[int, int] | None:
    """Return ``(start, end)`` samples of the strongest speech-like burst, or ``None``.

    Frames louder than both the noise floor (10th percentile) + ``above_floor_db`` and
    ``min_level_dbfs`` are active; gaps shorter than ``max_gap`` seconds are bridged and
    bursts shorter than ``min_length`` are ignored. Steady noise never qualifies.
    """
    levels = frame_levels(samples)
    if len(levels) == 0:
        return None
    floor = float(np.percentile(levels, 10))
    active = levels > max(floor + above_floor_db, min_level_dbfs)
    bursts: list[tuple[int, int]] = []
    for index in np.flatnonzero(active):
        if bursts and index - bursts[-1][1] <= max_gap * 100:
            bursts[-1] = (bursts[-1][0], int(index) + 1)
        else:
            bursts.append((int(index), int(index) + 1))
    bursts = [(a, b) for a, b in bursts if b - a >= min_length * 100]
    if not bursts:
        return None
    power = 10.0 ** (levels / 10.0)
    start, end = max(bursts, key=lambda burst: float(power[burst[0] : burst[1]].sum()))
    return start * FRAME, end * FRAME

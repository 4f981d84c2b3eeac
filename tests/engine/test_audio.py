"""Audio decoding, resampling and voice-activity trimming."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import wave
from pathlib import Path

import numpy as np
import pytest

from custom_components.compact_ai.engine.errors import AudioFormatError
from custom_components.compact_ai.engine.voice.audio import (
    MAX_BYTES_PER_SECOND,
    MAX_SECONDS,
    TARGET_RATE,
    Audio,
    decode_wav,
    read_wav,
    resample,
    speech_segment,
)

RNG = np.random.default_rng(0)


def pcm_wav(frames: np.ndarray, rate: int, width: int) -> bytes:
    """Write int frames (n, channels) as a plain PCM WAV with ``wave``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(frames.shape[1])
        out.setsampwidth(width)
        out.setframerate(rate)
        if width == 1:
            raw = (frames + 128).astype(np.uint8).tobytes()
        elif width == 3:
            raw = frames.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
        else:
            raw = frames.astype(f"<i{width}").tobytes()
        out.writeframes(raw)
    return buffer.getvalue()


def raw_wav(tag: int, channels: int, rate: int, bits: int, data: bytes, ext: int = 0) -> bytes:
    """Write a WAV by hand: any format tag, optionally WAVE_FORMAT_EXTENSIBLE."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if ext else tag, channels, rate, rate * align, align, bits)
    if ext:
        guid = struct.pack("<H", tag) + bytes.fromhex("000000001000800000aa00389b71")
        fmt += struct.pack("<HHI", 22, bits, 0) + guid
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data))
    body = b"WAVE" + chunks + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def with_fmt_field(wav: bytes, offset: int, kind: str, value: int) -> bytes:
    """Return ``wav`` with one header field overwritten (a header that lies)."""
    data = bytearray(wav)
    struct.pack_into(kind, data, offset, value)
    return bytes(data)


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / TARGET_RATE)[spectrum.argmax()])


def level_db(samples: np.ndarray) -> float:
    x = samples.astype(np.float64) / 32768
    return float(10 * np.log10(np.mean(x**2) + 1e-20))


def test_16k_mono_int16_is_returned_unchanged() -> None:
    samples = RNG.integers(-32768, 32767, 8000).astype(np.int16)
    audio = decode_wav(pcm_wav(samples[:, None], 16000, 2))
    assert audio.samples.dtype == np.int16
    np.testing.assert_array_equal(audio.samples, samples)
    assert (audio.source_rate, audio.source_channels, audio.truncated) == (16000, 1, False)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampled_tone_keeps_pitch_length_and_level(rate: int) -> None:
    frames = np.rint(tone(1000, rate, 1.0) * 32767).astype(np.int16)[:, None]
    audio = decode_wav(pcm_wav(frames, rate, 2))
    assert len(audio.samples) == pytest.approx(TARGET_RATE, abs=2)
    middle = audio.samples[2000:-2000]
    assert peak_hz(middle) == pytest.approx(1000, abs=3)
    assert level_db(middle) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)


def test_downsampling_removes_tones_above_the_new_nyquist() -> None:
    frames = np.rint(tone(12000, 44100, 1.0) * 32767).astype(np.int16)[:, None]
    audio = decode_wav(pcm_wav(frames, 44100, 2))
    assert level_db(audio.samples[500:-500]) < -80  # aliasing would put it at 4.1 kHz


def test_resample_float_interface_matches_a_known_ratio() -> None:
    x = tone(440, 48000, 0.5).astype(np.float32)
    y = resample(x, 48000)
    np.testing.assert_allclose(y[100:-100], tone(440, 16000, 0.5)[100:-100], atol=2e-3)


def test_stereo_is_downmixed() -> None:
    left = np.rint(tone(500, 16000, 0.5) * 20000).astype(np.int16)
    frames = np.stack([left, -left], axis=1)
    assert np.abs(decode_wav(pcm_wav(frames, 16000, 2)).samples).max() <= 1  # opposite phases
    frames = np.stack([left, np.zeros_like(left)], axis=1)
    mono = decode_wav(pcm_wav(frames, 16000, 2)).samples
    np.testing.assert_allclose(mono, left / 2, atol=1)


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_pcm_sample_sizes(width: int) -> None:
    samples = RNG.integers(-30000, 30000, 4000).astype(np.int16)
    if width == 1:
        frames = (samples >> 8).astype(np.int32)
        expected, tolerance = frames.astype(np.int32) << 8, 0
    else:
        frames = samples.astype(np.int64) << (8 * (width - 2))
        expected, tolerance = samples, 0
    decoded = decode_wav(pcm_wav(frames[:, None], 16000, width)).samples
    np.testing.assert_allclose(decoded, expected, atol=tolerance)


def test_float32_and_extensible_24_bit() -> None:
    samples = RNG.uniform(-0.9, 0.9, 3000).astype(np.float32)
    decoded = decode_wav(raw_wav(3, 1, 16000, 32, samples.astype("<f4").tobytes())).samples
    np.testing.assert_allclose(decoded, np.rint(samples * 32768), atol=1)
    ints = RNG.integers(-(1 << 23), 1 << 23, 3000)
    data = ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    decoded = decode_wav(raw_wav(1, 1, 16000, 24, data, ext=1)).samples
    np.testing.assert_allclose(decoded, np.clip(np.rint(ints / 256), -32768, 32767), atol=1)


def test_empty_wav_has_no_speech() -> None:
    audio = decode_wav(pcm_wav(np.zeros((0, 1), np.int16), 16000, 2))
    assert len(audio.samples) == 0
    assert speech_segment(audio.samples) is None
    audio = decode_wav(pcm_wav(np.zeros((0, 2), np.int16), 44100, 2))
    assert len(audio.samples) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (raw_wav(7, 1, 8000, 8, bytes(800)), "mu-law"),
        (raw_wav(6, 1, 8000, 8, bytes(800)), "A-law"),
        (raw_wav(0x55, 1, 16000, 16, bytes(800), ext=1), "MP3"),
        (raw_wav(1, 1, 16000, 12, bytes(800)), "12-bit"),
        (
            b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(RNG.integers(0, 256, 4000, np.uint8)),
            "not a WAV",
        ),
        (bytes(RNG.integers(0, 256, 4000, np.uint8)), "not a WAV"),
        (raw_wav(1, 1, 16000, 16, bytes(800))[:30], "truncated"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no data chunk"),
        (raw_wav(1, 1, 16000, 16, bytes(800))[:12] + b"JUNK\xff\xff\xff\x7f", "truncated"),
        (
            raw_wav(1, 1, 16000, 16, bytes(800))[:12] + b"fmt \x00\x10\x00\x00" + bytes(4096),
            "too large",
        ),
        (
            raw_wav(1, 1, 16000, 16, bytes(800))[:12] + b"LIST\x00\x00\x00\x00" * 100,
            "more than 64 chunks",
        ),
        (with_fmt_field(raw_wav(1, 1, 16000, 16, bytes(800)), 28, "<I", 12345), "byte rate"),
        (with_fmt_field(raw_wav(1, 1, 16000, 16, bytes(800)), 32, "<H", 7), "block align"),
    ],
    ids=[
        "empty",
        "mu-law",
        "a-law",
        "mp3",
        "12-bit",
        "id3",
        "noise",
        "cut-header",
        "no-data",
        "junk-cut-off",
        "fmt-too-large",
        "100-chunks",
        "byte-rate-lie",
        "block-align-lie",
    ],
)
def test_unusable_input_raises_audio_format_error(data: bytes, message: str) -> None:
    with pytest.raises(AudioFormatError, match=message):
        decode_wav(data)


def test_ten_minutes_are_decoded_only_up_to_the_cap(tmp_path: Path) -> None:
    frames = np.zeros((44100 * 600, 2), np.int16)
    frames[::1000] = 3  # faint ticks, far below speech level
    path = tmp_path / "long.wav"
    path.write_bytes(pcm_wav(frames, 44100, 2))
    start = time.perf_counter()
    audio = read_wav(path)
    assert speech_segment(audio.samples) is None
    assert time.perf_counter() - start < 5.0
    assert audio.truncated
    assert len(audio.samples) == pytest.approx(MAX_SECONDS * TARGET_RATE, abs=2)


def test_vad_finds_the_burst_inside_noise() -> None:
    noise = RNG.normal(0, 100, 5 * TARGET_RATE)
    burst = tone(300, TARGET_RATE, 0.6, 1.0) * np.hanning(int(0.6 * TARGET_RATE)) * 8000
    noise[2 * TARGET_RATE : 2 * TARGET_RATE + len(burst)] += burst
    segment = speech_segment(np.rint(noise).astype(np.int16))
    assert segment is not None
    start, end = segment
    assert 1.95 * TARGET_RATE < start < 2.2 * TARGET_RATE
    assert 2.4 * TARGET_RATE < end < 2.65 * TARGET_RATE


@pytest.mark.parametrize("color", ["silence", "white", "brown"])
def test_vad_ignores_steady_noise(color: str) -> None:
    if color == "silence":
        samples = np.zeros(3 * TARGET_RATE, np.int16)
    else:
        noise = RNG.normal(0, 1, 3 * TARGET_RATE)
        if color == "brown":
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
        samples = np.rint(noise / noise.std() * 3000).astype(np.int16)
    assert speech_segment(samples) is None


def sparse_wav(path: Path, fmt: bytes, junk: int, data: int, prefix: bytes = b"") -> None:
    """Write a WAV whose ``junk`` and ``data`` bytes are a hole in the file (no disk used)."""
    with path.open("wb") as out:
        out.write(b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE")
        if junk:
            out.write(b"JUNK" + struct.pack("<I", junk))
            out.seek(junk, 1)
        out.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt)
        out.write(b"data" + struct.pack("<I", data) + prefix)
        out.truncate(out.tell() + data - len(prefix))


def read_measured(path: Path, max_seconds: float = MAX_SECONDS) -> tuple[Audio, int]:
    """Read ``path``; return the audio and the most memory Python and numpy held at once."""
    tracemalloc.start()
    try:
        return read_wav(path, max_seconds), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_300_mib_junk_chunk_is_skipped_not_read(tmp_path: Path) -> None:
    path = tmp_path / "junk.wav"
    speech = (tone(300, TARGET_RATE, 1.0) * 32767).astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, TARGET_RATE, TARGET_RATE * 2, 2, 16)
    sparse_wav(path, fmt, junk=300 << 20, data=len(speech), prefix=speech)
    audio, peak = read_measured(path)
    assert peak < 4 << 20, f"{peak / 2**20:.0f} MiB"
    assert len(audio.samples) == TARGET_RATE


def test_a_768_khz_32_channel_float64_stream_reads_a_bounded_window(tmp_path: Path) -> None:
    rate, channels = 768_000, 32
    path = tmp_path / "huge.wav"
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * channels * 8, channels * 8, 64)
    sparse_wav(path, fmt, junk=0, data=48 << 20)
    audio, peak = read_measured(path, max_seconds=10)
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB"
    assert audio.truncated
    frames = 10 * MAX_BYTES_PER_SECOND // (channels * 8)
    assert len(audio.samples) == pytest.approx(frames / 48, abs=2)

"""Text to speech for training voice commands: every local voice, varied, then augmented.

Engines (Debian packages ``espeak-ng``, ``flite``, ``festival`` with ``festvox-kallpc16k``,
``festvox-kdlpc16k``, ``festvox-us-slt-hts``) are driven through their command lines, so
nothing here links against them. Each English accent of espeak-ng combined with each of its
voice variants counts as one voice; flite and festival add their built-in voices. Where its
files are given, the neural Kokoro model (:mod:`.kokoro`) adds its English voices: natural
speakers, which is what makes synthetic training carry over to real voices. Synthesis
returns 16 kHz mono int16, like every clip the engine sees.

Augmentation: speed/formant perturbation, gain, a synthetic room (exponentially decaying
noise as impulse response), and background noise at a random SNR, either cut from real
recordings (when a folder of them is given) or generated colored noise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SynthesisError
from .audio import (
    TARGET_RATE,
    decode_wav,
    read_wav,
    resample,
    to_int16,
)
from .kokoro import KOKORO, kokoro_voice_names, load_kokoro

ESPEAK = "espeak-ng"
FLITE = "flite"
FESTIVAL = "festival"
ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
# Test-only or non-speech variants of espeak-ng.
_ESPEAK_SKIP = frozenset({"fast", "demonic", "unirobot"})
# awb_time only knows clock times. flite takes an absolute f0 target: each voice's own mean.
_FLITE_F0 = {"kal": 105.0, "kal16": 105.0, "awb": 100.0, "rms": 100.0, "slt": 170.0}
_FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Voice:
    """One synthesizer voice: engine plus the engine's own voice name."""

    engine: str
    name: str

    @property
    def id(self) -> str:
        """Return ``engine:name``, the identifier used on the command line and in manifests."""
        return f"{self.engine}:{self.name}"

    @property
    def family(self) -> str:
        """Return the voice's base (espeak-ng accent or flite/festival voice) for hold-outs."""
        return f"{self.engine}:{self.name.split('+')[0]}"


@dataclass(frozen=True, slots=True)
class Prosody:
    """How to say it: ``rate`` 1.0 = the voice's normal speed, ``pitch`` 1.0 = normal."""

    rate: float = 1.0
    pitch: float = 1.0


@dataclass(frozen=True, slots=True)
class Request:
    """One utterance to synthesize."""

    voice: Voice
    text: str
    prosody: Prosody = Prosody()


def _run(command: Sequence[str]) -> bytes:
    try:
        result = subprocess.run(
            list(command),
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SynthesisError(f"{command[0]} failed: {err}") from err
    if result.returncode != 0:
        raise SynthesisError(
            f"{command[0]} failed: {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout


def _espeak_variants() -> list[str]:
    listing = _run([ESPEAK, "--voices=variant"]).decode(errors="replace")
    names = re.findall(r"!v/(\S+)\s*$", listing, flags=re.MULTILINE)
    return sorted({name for name in names if name.lower() not in _ESPEAK_SKIP})


def _espeak_voices() -> list[Voice]:
    listing = _run([ESPEAK, "--voices=en"]).decode(errors="replace")
    present = set(re.findall(r"^\s*\d+\s+(\S+)", listing, flags=re.MULTILINE))
    accents = [accent for accent in ESPEAK_ACCENTS if accent in present]
    variants = _espeak_variants()
    return [Voice(ESPEAK, accent) for accent in accents] + [
        Voice(ESPEAK, f"{accent}+{variant}") for accent in accents for variant in variants
    ]


def _flite_voices() -> list[Voice]:
    listing = _run([FLITE, "-lv"]).decode(errors="replace")
    present = set(listing.split(":", 1)[-1].split())
    return [Voice(FLITE, name) for name in _FLITE_F0 if name in present]


def _festival_voices() -> list[Voice]:
    listing = _run([FESTIVAL, "--batch", "(print (voice.list))"]).decode(errors="replace")
    present = set(re.findall(r"[\w-]+", listing))
    return [Voice(FESTIVAL, name) for name in _FESTIVAL_VOICES if name in present]


def available_voices(kokoro: Path | None = None) -> list[Voice]:
    """Return every English voice of the installed synthesizers (and of Kokoro in ``kokoro``)."""
    voices = [Voice(KOKORO, name) for name in kokoro_voice_names(kokoro)]
    for engine, lister in (
        (ESPEAK, _espeak_voices),
        (FLITE, _flite_voices),
        (FESTIVAL, _festival_voices),
    ):
        if shutil.which(engine):
            voices += lister()
    return voices


def _espeak(request: Request) -> bytes:
    speed = round(175 * request.prosody.rate)
    pitch = round(min(99, max(0, 50 * request.prosody.pitch)))
    command = [ESPEAK, "-v", request.voice.name, "-s", str(speed), "-p", str(pitch), "--stdout"]
    return _run([*command, request.text])


def _flite(request: Request, folder: Path) -> bytes:
    out = folder / "flite.wav"
    stretch = f"duration_stretch={1.0 / request.prosody.rate:.3f}"
    f0 = f"int_f0_target_mean={_FLITE_F0[request.voice.name] * request.prosody.pitch:.1f}"
    command = [FLITE, "-voice", request.voice.name, "--setf", stretch, "--setf", f0]
    _run([*command, "-t", request.text, "-o", str(out)])
    return out.read_bytes()


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival(requests: Sequence[Request], folder: Path) -> list[bytes]:
    """Synthesize many utterances in one festival process (it starts slowly)."""
    lines = []
    for index, request in enumerate(requests):
        lines += [
            f"(voice_{request.voice.name})",
            # Pitch is raised afterwards by resampling, which also shortens: stretch first.
            f"(Parameter.set 'Duration_Stretch {request.prosody.pitch / request.prosody.rate:.3f})",
            f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(request.text)})) "
            f'"{folder}/{index}.wav" \'riff)',
        ]
    script = folder / "batch.scm"
    script.write_text("\n".join(lines) + "\n")
    _run([FESTIVAL, "--batch", str(script)])
    return [(folder / f"{index}.wav").read_bytes() for index in range(len(requests))]


def _kokoro(request: Request, folder: Path | None) -> np.ndarray:
    if folder is None:
        raise SynthesisError(f"{request.voice.id}: no Kokoro folder given")
    # Natural voices get half the pitch range (in log terms) of the robotic engines.
    pitch = request.prosody.pitch**0.5
    speed = request.prosody.rate / pitch  # the resampling below speeds it up by ``pitch``
    return perturb_speed(load_kokoro(folder).speak(request.text, request.voice.name, speed), pitch)


def synthesize(
    requests: Sequence[Request], workers: int = 2, kokoro: Path | None = None
) -> list[np.ndarray]:
    """Return 16 kHz mono int16 audio for every request, in order.

    Kokoro voices need ``kokoro``, the folder of its files.
    """
    results = [np.zeros(0, np.int16)] * len(requests)
    with tempfile.TemporaryDirectory(prefix="compact-tts-") as tmp:
        root = Path(tmp)
        by_voice: dict[Voice, list[int]] = {}
        single: list[int] = []
        for index, request in enumerate(requests):
            if request.voice.engine == FESTIVAL:
                by_voice.setdefault(request.voice, []).append(index)
            else:
                single.append(index)

        def one(index: int) -> None:
            request = requests[index]
            if request.voice.engine == ESPEAK:
                results[index] = decode_wav(_espeak(request)).samples
                return
            if request.voice.engine == KOKORO:
                results[index] = _kokoro(request, kokoro)
                return
            folder = root / f"flite{index}"
            folder.mkdir()
            results[index] = decode_wav(_flite(request, folder)).samples

        def festival_group(indices: list[int]) -> None:
            folder = root / f"festival{indices[0]}"
            folder.mkdir()
            group = [requests[index] for index in indices]
            for index, data in zip(indices, _festival(group, folder), strict=True):
                results[index] = perturb_speed(
                    decode_wav(data).samples, requests[index].prosody.pitch
                )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = [pool.submit(one, index) for index in single]
            jobs += [pool.submit(festival_group, indices) for indices in by_voice.values()]
            for job in jobs:
                job.result()
    return results


# --------------------------------------------------------------------------- augmentation


def perturb_speed(samples: np.ndarray, factor: float) -> np.ndarray:
    """Play int16 ``samples`` ``factor`` times faster (pitch and formants move with it)."""
    if factor == 1.0 or len(samples) == 0:
        return samples
    source = round(TARGET_RATE * factor)
    return to_int16(resample(samples.astype(np.float32) / 32768.0, source, TARGET_RATE))


def colored_noise(rng: np.random.Generator, length: int, exponent: float) -> np.ndarray:
    """Return unit-RMS noise whose power falls as 1/f**exponent (0 white, 1 pink, 2 brown)."""
    spectrum = rng.standard_normal(length // 2 + 1) + 1j * rng.standard_normal(length // 2 + 1)
    frequencies = np.fft.rfftfreq(length, 1.0 / TARGET_RATE)
    spectrum *= np.maximum(frequencies, 20.0) ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum, n=length)
    return np.asarray(noise / (np.sqrt(np.mean(noise**2)) + 1e-12), dtype=np.float32)


def room_impulse(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Return a synthetic room impulse response with reverberation time ``rt60`` seconds."""
    length = int(rt60 * TARGET_RATE)
    t = np.arange(length) / TARGET_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[: int(0.002 * TARGET_RATE)] = 0.0  # first reflections arrive after the direct sound
    impulse = np.concatenate([[1.0], tail * 10 ** (rng.uniform(-14, -6) / 20)])
    return np.asarray(impulse / np.sqrt(np.sum(impulse**2)), dtype=np.float32)


def convolve(samples: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """Return ``samples`` convolved with ``impulse`` (FFT), cut to the input length."""
    size = len(samples) + len(impulse) - 1
    n = 1 << (size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(samples, n) * np.fft.rfft(impulse, n), n)
    return out[: len(samples)].astype(np.float32)


class NoiseSource:
    """Background noise: random excerpts of real recordings, or generated colored noise."""

    def __init__(self, files: Sequence[Path] = ()) -> None:
        """Load the WAV ``files`` (any format :func:`read_wav` takes); none = generated."""
        self.files = tuple(files)
        self._clips = [read_wav(path, max_seconds=120).samples for path in self.files]

    def sample(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """Return ``length`` samples of unit-RMS noise."""
        clips = [clip for clip in self._clips if len(clip) > length]
        if clips and rng.random() < 0.7:
            clip = clips[rng.integers(len(clips))]
            start = rng.integers(len(clip) - length)
            noise = clip[start : start + length].astype(np.float32)
            rms = np.sqrt(np.mean(noise**2))
            if rms > 1.0:
                return np.asarray(noise / rms, dtype=np.float32)
        noise = colored_noise(rng, length, rng.uniform(0.0, 2.0))
        if rng.random() < 0.3:  # slow level changes, like a fan or traffic
            envelope = 1.0 + 0.5 * np.sin(
                2 * np.pi * rng.uniform(0.2, 3) * np.arange(length) / TARGET_RATE
            )
            noise *= envelope.astype(np.float32)
        return noise


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Add unit-RMS ``noise`` to float ``speech`` at ``snr_db`` relative to the speech level."""
    active = speech[np.abs(speech) > 0.05 * (np.max(np.abs(speech)) + 1e-9)]
    level = np.sqrt(np.mean(active**2)) if len(active) else 0.0
    return speech + noise * level * 10 ** (-snr_db / 20)

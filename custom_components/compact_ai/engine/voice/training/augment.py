"""Augmentation: turn clean synthesized speech into realistic recordings, and make noises."""

from __future__ import annotations

import numpy as np

from ..audio import TARGET_RATE, resample, to_int16
from ..tts import NoiseSource, colored_noise, convolve, mix, perturb_speed, room_impulse

# Speed perturbation up to x1.25 (log-uniform both ways): formants move like from a long adult
# to a child vocal tract. Voice diversity is what carries TTS training over to real voices.
SPEED_RANGE = float(np.log(1.25))


def augment(rng: np.random.Generator, speech: np.ndarray, noise: NoiseSource) -> np.ndarray:
    """Return one realistic int16 recording of clean int16 ``speech``."""
    x = speech
    if rng.random() < 0.8:  # another vocal tract length (and tempo): a new speaker
        x = perturb_speed(x, float(np.exp(rng.uniform(-SPEED_RANGE, SPEED_RANGE))))
    x = x.astype(np.float32)
    before, after = (int(s * TARGET_RATE) for s in rng.uniform(0.1, 0.7, size=2))
    x = np.concatenate([np.zeros(before, np.float32), x, np.zeros(after, np.float32)])
    if rng.random() < 0.4:
        x = convolve(x, room_impulse(rng, float(rng.uniform(0.15, 0.7))))
    x *= 10 ** (rng.uniform(-38, -4) / 20) * 32768 / (np.max(np.abs(x)) + 1e-6)
    if rng.random() < 0.85:
        x = mix(x, noise.sample(rng, len(x)), float(rng.uniform(5, 30)))
    if rng.random() < 0.15:  # narrowband microphone / 8 kHz stream
        x = resample(resample(x / 32768, TARGET_RATE, 8000), 8000, TARGET_RATE) * 32768
    samples = to_int16(x / 32768)
    if rng.random() < 0.3 and len(speech) < 0.9 * TARGET_RATE:  # a 1 s clip, like a dataset
        start = int(before + (len(speech) - TARGET_RATE) * rng.uniform(0.2, 0.8))
        samples = samples[max(0, start) : max(0, start) + TARGET_RATE]
    return samples


def nonspeech(rng: np.random.Generator, noise: NoiseSource) -> np.ndarray:
    """Return a clip of non-speech sound: noise bursts, tones, clicks or plain noise."""
    length = int(rng.uniform(1.0, 2.5) * TARGET_RATE)
    t = np.arange(length) / TARGET_RATE
    base = noise.sample(rng, length) * 10 ** (rng.uniform(-50, -25) / 20)
    kind = rng.integers(4)
    if kind == 0:  # bursts: clatter, steps, knocks
        events = np.zeros(length, np.float32)
        for _ in range(int(rng.integers(1, 6))):
            start, size = int(rng.integers(length)), int(rng.uniform(0.01, 0.3) * TARGET_RATE)
            burst = colored_noise(rng, size, rng.uniform(0, 2)) * np.exp(
                -np.arange(size) / (size / 4)
            )
            events[start : start + size] += burst[: length - start] * rng.uniform(0.05, 0.5)
        base += events
    elif kind == 1:  # tones and sweeps: beeps, whistles, animals
        f0 = rng.uniform(200, 2000) * (1 + rng.uniform(-0.5, 0.5) * t / t[-1])
        tone = np.sin(2 * np.pi * np.cumsum(f0) / TARGET_RATE) * rng.uniform(0.02, 0.3)
        gate = (np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) > rng.uniform(-0.5, 0.5)).astype(float)
        base += (tone * gate).astype(np.float32)
    elif kind == 2:  # a loud noise swell
        base *= (1 + rng.uniform(2, 30) * np.exp(-(((t - t.mean()) / 0.2) ** 2))).astype(np.float32)
    return to_int16(base)

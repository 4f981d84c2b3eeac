"""What one training run synthesizes, and the phrases of the shipped default set."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PHRASES = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "unlock the door", "lock the door", "lights on", "lights off",
)  # fmt: skip

Progress = Callable[[float], None]


@dataclass(frozen=True)
class Plan:
    """How much to synthesize; the defaults train the shipped default command set."""

    phrases: tuple[str, ...]
    per_phrase: int = 240
    negatives: int = 2400
    seed: int = 0
    hold_out: tuple[str, ...] = ()
    recordings: Path | None = None
    noise: Path | None = None
    kokoro: Path | None = None  # folder of the Kokoro TTS files (adds its voices)
    hidden: int = 128
    epochs: int = 30
    members: int = 3  # MLPs averaged: single ones swing by several points on real voices
    accept: float = 0.97  # share of unseen voices' phrase clips the threshold lets through
    threads: int = 2
    use_tts: bool = True  # False: learn from the recordings only (a host without a synthesizer)
    chunk: int = 256  # clips synthesized between progress reports (and chances to cancel)

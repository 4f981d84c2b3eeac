"""``wake``: how well a command set's phrases work as wake phrases on real recordings.

Every clip of a phrase (``--audio DIR/<phrase>/*.wav``) is streamed on its own between 1 s
pauses of noise at the clip's own noise floor (a room never goes digitally silent), through
:class:`~custom_components.compact_ai.engine.voice.wake.WakeSpotter` in 40 ms chunks, as a voice
satellite sends it: detected if that phrase wakes. Everything else (other words of
``--audio``, the sentences of ``--speech`` and the noise of ``--silence``) is streamed once,
one long stream with such pauses between utterances: each time a phrase wakes there, it is a
false wake. Reported per phrase: detection rate and false wakes (per hour of that stream and
per 100 utterances of other speech), plus the time per second of audio.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.voice.audio import TARGET_RATE, frame_levels, to_int16
from custom_components.compact_ai.engine.voice.commands import SILENCE, UNKNOWN, CommandRecognizer
from custom_components.compact_ai.engine.voice.wake import WakeDetection, WakeSpotter
from tools.compact.evaluate.commands import Clip

CHUNK_SAMPLES = 640  # 40 ms
PAUSE_SAMPLES = TARGET_RATE  # 1 s between utterances


def pause_after(samples: np.ndarray, seed: int) -> np.ndarray:
    """Return 1 s of white noise as loud as the quietest tenth of ``samples``' 10 ms frames."""
    floor_dbfs = float(np.percentile(frame_levels(samples), 10)) if len(samples) else -100.0
    return to_int16(np.random.default_rng(seed).normal(0.0, 10 ** (floor_dbfs / 20), PAUSE_SAMPLES))


def listen(spotter: WakeSpotter, stream: np.ndarray) -> list[WakeDetection]:
    """Feed ``stream`` in satellite-sized chunks; return every detection."""
    found = []
    for start in range(0, len(stream), CHUNK_SAMPLES):
        detection = spotter.feed(stream[start : start + CHUNK_SAMPLES])
        if detection is not None:
            found.append(detection)
    return found


def evaluate_wake(recognizer: CommandRecognizer, clips: list[Clip]) -> dict[str, Any]:
    """Stream the clips as the module docstring says; return the metrics."""
    phrases = recognizer.command_set.phrases
    started, audio_samples = time.perf_counter(), 0
    detected: dict[str, list[bool]] = {phrase: [] for phrase in phrases}
    for index, clip in enumerate(c for c in clips if c.truth in phrases):
        pause = pause_after(clip.samples, index)
        stream = np.concatenate([pause, clip.samples, pause])
        heard = listen(WakeSpotter(recognizer, [clip.truth]), stream)
        detected[clip.truth].append(any(d.phrase == clip.truth for d in heard))
        audio_samples += len(stream)
    others = [c for c in clips if c.truth == UNKNOWN]
    noise = [c.samples for c in clips if c.truth == SILENCE]
    parts = [np.zeros(PAUSE_SAMPLES, np.int16)]
    for index, clip in enumerate(others):
        parts += [clip.samples, pause_after(clip.samples, index)]
    stream = np.concatenate([*parts, *noise])
    false_wakes = [d.phrase for d in listen(WakeSpotter(recognizer, phrases), stream)]
    audio_samples += len(stream)
    elapsed = time.perf_counter() - started
    hours = len(stream) / TARGET_RATE / 3600
    return {
        "phrases": {
            phrase: {
                "clips": len(detected[phrase]),
                "detected": float(np.mean(detected[phrase])) if detected[phrase] else None,
                "false_wakes": false_wakes.count(phrase),
                "false_wakes_per_hour": false_wakes.count(phrase) / hours,
                "false_wakes_per_100_utterances": 100
                * false_wakes.count(phrase)
                / max(len(others), 1),
            }
            for phrase in phrases
        },
        "detected": float(np.mean([hit for hits in detected.values() for hit in hits] or [False])),
        "false_wakes": len(false_wakes),
        "other_utterances": len(others),
        "noise_seconds": sum(len(n) for n in noise) / TARGET_RATE,
        "other_stream_hours": hours,
        "ms_per_audio_second": 1000 * elapsed / (audio_samples / TARGET_RATE),
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    """Return the table ``wake`` prints: one line per phrase."""
    lines = [
        f"other speech: {result['other_utterances']} utterances + "
        f"{result['noise_seconds']:.0f} s of noise = {60 * result['other_stream_hours']:.1f} min",
        f"{'phrase':<18}{'clips':>6}{'detected':>10}{'false wakes':>13}"
        f"{'/hour':>8}{'/100 utt':>10}",
    ]
    for phrase, row in result["phrases"].items():
        hit = "-" if row["detected"] is None else f"{100 * row['detected']:.0f}%"
        lines.append(
            f"{phrase:<18}{row['clips']:>6}{hit:>10}{row['false_wakes']:>13}"
            f"{row['false_wakes_per_hour']:>8.0f}{row['false_wakes_per_100_utterances']:>10.1f}"
        )
    lines.append(f"ms per second of audio: {result['ms_per_audio_second']:.1f}")
    return lines

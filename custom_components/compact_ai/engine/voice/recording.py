"""Checks of a user's recording before it is trained on: clipping, and the phrase it sounds like.

All are conservative, measured on Speech Commands v0.01 (speech_v01: 30 words x 10 speakers):
a bad recording trains the head on the wrong sound for every later command, but refusing a
good one only costs the user another try.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from ..errors import AudioFormatError
from .audio import read_wav, speech_segment
from .commands import CommandRecognizer, command_window, pool
from .speech import SpeechEmbedder

CLIPPED_LEVEL: Final = 32_000  # |sample| at or above this (-0.2 dBFS) counts as clipped
# Share of the speech's samples at full scale above which the recording is refused: the most
# any of the 295 speech_v01 clips with speech reaches is 2.4 %; espeak-ng speech amplified 3x
# reaches 2.6-4.1 % (kept), 5x 5.8-10.8 % and 10x 12.6-26.1 % (refused).
MAX_CLIPPED_SHARE: Final = 0.05
# How many times likelier the command set must find another phrase than the claimed one: at
# 50 none of 98 genuine speech_v01 clips (with speech) is refused and 1126 of 1274 claimed as
# another default phrase are caught; at 1, five genuine ones are (the set mishears them).
OTHER_PHRASE_MARGIN: Final = 50.0
# A phrase the set does not know is compared with the user's recordings, once it and another
# phrase have this many: with 3 recordings from other speakers none of 205 genuine clips is
# refused at a distance margin of 1.5 and 116 of 205 recordings of another phrase are caught
# (with 1 recording, 11 of 265 genuine clips are refused).
MIN_REFERENCES: Final = 3
DISTANCE_MARGIN: Final = 1.5


def clipped_share(speech: np.ndarray) -> float:
    """Return the share of int16 ``speech`` samples at full scale (0 for no samples)."""
    if len(speech) == 0:
        return 0.0
    return float(np.mean(np.abs(speech.astype(np.int32)) >= CLIPPED_LEVEL))


def sounds_like(
    recognizer: CommandRecognizer,
    samples: np.ndarray,
    phrase: str,
    recordings: dict[str, list[Path]],
) -> str | None:
    """Return the other phrase ``samples`` clearly are, or ``None``.

    The set in use decides for a phrase it knows; for one it does not (it would hear the
    phrase's nearest neighbour without being wrong), the user's ``recordings`` do.
    """
    if phrase in recognizer.command_set.phrases:
        return _heard_as_other(recognizer, samples, phrase)
    return _closer_to_other(recognizer.embedder, samples, phrase, recordings)


def _heard_as_other(recognizer: CommandRecognizer, samples: np.ndarray, phrase: str) -> str | None:
    result = recognizer.recognize(samples)
    if not result.is_command or result.label == phrase:
        return None
    own = result.probabilities.get(phrase, 0.0)
    return result.label if result.probabilities[result.label] >= OTHER_PHRASE_MARGIN * own else None


def _closer_to_other(
    embedder: SpeechEmbedder, samples: np.ndarray, phrase: str, recordings: dict[str, list[Path]]
) -> str | None:
    """Compare mean cosine distances to each phrase's recordings (enough of them only)."""
    enough = {p: files for p, files in recordings.items() if len(files) >= MIN_REFERENCES}
    if phrase not in enough or len(enough) < 2:
        return None
    heard = features(embedder, samples)
    if heard is None:
        return None
    measured = {p: _mean_distance(embedder, heard, files) for p, files in enough.items()}
    distances = {p: d for p, d in measured.items() if d is not None}
    if phrase not in distances or len(distances) < 2:
        return None
    nearest = min((p for p in distances if p != phrase), key=distances.__getitem__)
    return nearest if distances[phrase] > DISTANCE_MARGIN * distances[nearest] else None


def _mean_distance(embedder: SpeechEmbedder, heard: np.ndarray, files: list[Path]) -> float | None:
    """Return the mean cosine distance to the readable ``files`` (``None``: not enough)."""
    references = [f for f in (_file_features(embedder, path) for path in files) if f is not None]
    if len(references) < MIN_REFERENCES:
        return None
    return float(np.mean(1.0 - np.stack(references) @ heard))


def _file_features(embedder: SpeechEmbedder, path: Path) -> np.ndarray | None:
    try:
        return features(embedder, read_wav(path).samples)
    except AudioFormatError:
        return None  # a damaged stored recording is no reference


def features(embedder: SpeechEmbedder, samples: np.ndarray) -> np.ndarray | None:
    """Return the unit-length pooled embedding of the speech in ``samples`` (``None``: none)."""
    segment = speech_segment(samples)
    if segment is None:
        return None
    pooled = pool(embedder.embeddings(command_window(samples, segment)[np.newaxis]))[0]
    return np.asarray(pooled / max(float(np.linalg.norm(pooled)), 1e-12), dtype=np.float32)

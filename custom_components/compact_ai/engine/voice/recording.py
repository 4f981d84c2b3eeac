"""Checks of a user's recording before it is trained on: clipping, and the phrase it sounds like.

Both are conservative, measured on Speech Commands v0.01 (speech_v01, 300 clips; numbers in
the commit that added them): a bad recording trains the head on the wrong sound for every
later command, but refusing a good one only costs the user another try.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from .commands import CommandRecognizer

CLIPPED_LEVEL: Final = 32_000  # |sample| at or above this (-0.2 dBFS) counts as clipped
# Share of the speech's samples at full scale above which the recording is refused: the most
# any of the 295 speech_v01 clips with speech reaches is 2.4 %; espeak-ng speech amplified 3x
# reaches 2.6-4.1 % (kept), 5x 5.8-10.8 % and 10x 12.6-26.1 % (refused).
MAX_CLIPPED_SHARE: Final = 0.05
# How many times likelier the command set must find another phrase than the claimed one: at
# 50 none of 100 genuine speech_v01 clips is refused (at 1, five are: the set mishears them).
OTHER_PHRASE_MARGIN: Final = 50.0


def clipped_share(speech: np.ndarray) -> float:
    """Return the share of int16 ``speech`` samples at full scale (0 for no samples)."""
    if len(speech) == 0:
        return 0.0
    return float(np.mean(np.abs(speech.astype(np.int32)) >= CLIPPED_LEVEL))


def sounds_like(recognizer: CommandRecognizer, samples: np.ndarray, phrase: str) -> str | None:
    """Return the other phrase ``samples`` clearly are, or ``None``.

    Only a set that knows ``phrase`` can tell: a phrase it was not trained on would sound
    like its nearest neighbour without being wrong.
    """
    if phrase not in recognizer.command_set.phrases:
        return None
    result = recognizer.recognize(samples)
    if not result.is_command or result.label == phrase:
        return None
    own = result.probabilities.get(phrase, 0.0)
    return result.label if result.probabilities[result.label] >= OTHER_PHRASE_MARGIN * own else None

"""Train a voice command set from synthesized speech (plus the user's own clips).

Used by ``python -m tools.compact train-commands`` and by Home Assistant when phrases change.
Every phrase is spoken by every local TTS voice family (:mod:`..tts`) with varied rate,
pitch, speed, room and background noise. The ``_unknown_`` class learns from other words
(common English words, parts of multi-word phrases, near-phrases such as "open the door"),
ordinary sentences and non-speech sounds. The threshold is calibrated on held-out voice
families; the shipped head is then retrained on all voices and averages a few MLPs trained
from different seeds. Real speech from the evaluation data is never used; noise recordings
are used only when a noise folder is given, and the manifest lists them.

One module per step:

- :mod:`.plan`: how much to synthesize, and the default phrases
- :mod:`.texts`: what to say (word lists in ``words.json``)
- :mod:`.augment`: clean speech -> realistic recordings; non-speech sounds
- :mod:`.features`: clips -> pooled speech features (the engine's own path)
- :mod:`.head`: the MLP head, its calibration and merging
- :mod:`.command_set`: the whole run, and writing the set
"""

from __future__ import annotations

from .command_set import WEIGHTS_NAME, select_voices, train_command_set, write_command_set
from .features import SpokenClip
from .head import merge_heads, train_head
from .plan import DEFAULT_PHRASES, Plan, Progress
from .texts import negative_texts, negative_words, phrase_parts

__all__ = [
    "DEFAULT_PHRASES",
    "WEIGHTS_NAME",
    "Plan",
    "Progress",
    "SpokenClip",
    "merge_heads",
    "negative_texts",
    "negative_words",
    "phrase_parts",
    "select_voices",
    "train_command_set",
    "train_head",
    "write_command_set",
]

"""What to say: the phrases, and the other words and sentences the ``_unknown_`` class learns.

The word lists live in ``words.json`` beside this module (read once, on first use):

- ``common_words``: common English words. Phrases and their ``homophones`` are dropped per
  command set. Close near-misses ("yet", "lift", "stock") are not negatives: on real voices
  they taught the head to reject the phrases themselves (command accuracy fell ~6 points).
  The Speech Commands auxiliary words (numbers, "bed", "bird", "cat", "dog", "happy",
  "house", "marvin", "sheila", "tree", "wow") and their homophones are left out on purpose,
  so that evaluating on them measures the rejection of words never seen in training.
- ``near_phrases``: phrases close to the default commands ("open the door").
- ``sentences``: ordinary sentences.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..tts import Prosody, Request, Voice
from .plan import Plan

WORDS_FILE = Path(__file__).with_name("words.json")


@dataclass(frozen=True, slots=True)
class WordLists:
    """The contents of ``words.json``."""

    common_words: tuple[str, ...]
    homophones: dict[str, tuple[str, ...]]
    near_phrases: tuple[str, ...]
    sentences: tuple[str, ...]


@cache
def word_lists() -> WordLists:
    """Return the word lists (read from ``words.json`` once)."""
    data = json.loads(WORDS_FILE.read_text(encoding="utf-8"))
    return WordLists(
        common_words=tuple(data["common_words"]),
        homophones={word: tuple(same) for word, same in data["homophones"].items()},
        near_phrases=tuple(data["near_phrases"]),
        sentences=tuple(data["sentences"]),
    )


def negative_words(phrases: Sequence[str]) -> list[str]:
    """Return the single-word negatives: common words minus phrases and their homophones."""
    words = word_lists()
    banned = set(phrases)
    for phrase in phrases:
        banned.update(words.homophones.get(phrase, ()))
    return [word for word in dict.fromkeys(words.common_words) if word not in banned]


def phrase_parts(phrases: Sequence[str]) -> list[str]:
    """Return contiguous parts of multi-word phrases that are not phrases themselves."""
    parts = set()
    for phrase in phrases:
        words = phrase.split()
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                parts.add(" ".join(words[i:j]))
    return sorted(parts - set(phrases) - {"the"})


def negative_texts(phrases: Sequence[str]) -> list[str]:
    """Return multi-word negatives: near-phrases and sentences that are not phrases."""
    words = word_lists()
    return [text for text in (*words.near_phrases, *words.sentences) if text not in phrases]


def plan_items(plan: Plan, rng: np.random.Generator) -> list[tuple[str, int]]:
    """Return (text, label index) for every synthesized clip; unknown is the last label."""
    unknown = len(plan.phrases)
    items = [(phrase, index) for index, phrase in enumerate(plan.phrases)] * plan.per_phrase
    words, parts = negative_words(plan.phrases), phrase_parts(plan.phrases)
    texts = negative_texts(plan.phrases)
    n_parts = min(plan.negatives // 10, 30 * len(parts))
    n_texts = plan.negatives // 5
    n_words = plan.negatives - n_parts - n_texts
    items += [(str(rng.choice(words)), unknown) for _ in range(n_words)]
    items += [(parts[i % len(parts)], unknown) for i in range(n_parts)] if parts else []
    items += [(str(rng.choice(texts)), unknown) for _ in range(n_texts)]
    return items


def voice_families(voices: Sequence[Voice]) -> dict[str, list[Voice]]:
    """Return the voices by family (an engine's accent and its variants), in order."""
    families: dict[str, list[Voice]] = {}
    for voice in voices:
        families.setdefault(voice.family, []).append(voice)
    return families


def _prosody(rng: np.random.Generator) -> Prosody:
    return Prosody(rate=float(rng.uniform(0.75, 1.3)), pitch=float(rng.uniform(0.75, 1.35)))


def voice_requests(
    rng: np.random.Generator, items: Sequence[tuple[str, int]], voices: Sequence[Voice]
) -> list[tuple[Request, int]]:
    """Give every (text, label) a voice: families take turns, a random voice within each."""
    families = list(voice_families(voices).values())
    order = rng.permutation(len(items))
    planned = []
    for turn, index in enumerate(order):
        text, label = items[index]
        family = families[turn % len(families)]
        voice = family[int(rng.integers(len(family)))]
        planned.append((Request(voice, text, _prosody(rng)), label))
    return planned


def spread[T](items: Sequence[T], count: int) -> list[T]:
    """Return ``count`` of ``items`` evenly spread over them, in order (all if fewer).

    Which voices of an engine, or speakers of a multi-speaker voice, are asked to speak:
    neighbours in such lists are often alike, the whole range is not.
    """
    if count >= len(items):
        return list(items)
    if count <= 0:
        return []
    picked = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[int(i)] for i in dict.fromkeys(picked.tolist())]


OTHER_CLIPS = 120  # other words said by all outside voices together, at least


def spoken_negatives(phrases: int, voices: int = 1) -> int:
    """Return how many other words each of ``voices`` outside voices (Home Assistant TTS) says.

    At least 10 and twice the phrases; fewer voices each say more, together
    :data:`OTHER_CLIPS`: one voice's 20 other words let 47 % of other speech through as a
    command, 120 let 19 % through (README, "More voices, or one voice's speakers").
    """
    return max(10, 2 * phrases, -(-OTHER_CLIPS // max(1, voices)))


def spoken_texts(phrases: Sequence[str], voice_index: int, negatives: int) -> list[tuple[str, int]]:
    """Return (text, label) one outside voice says: every phrase, then ``negatives`` others.

    The others are the phrase parts, then common words, near-phrases and sentences in a fixed
    rotation that differs from voice to voice (retraining asks for the same texts, which Home
    Assistant's memory cache then answers).
    """
    unknown = len(phrases)
    parts = phrase_parts(phrases)
    others = negative_words(phrases) + negative_texts(phrases)
    start = (voice_index * negatives) % max(1, len(others))
    rotated = (others[start:] + others[:start])[: max(0, negatives - len(parts))]
    return [(p, i) for i, p in enumerate(phrases)] + [(t, unknown) for t in parts + rotated]

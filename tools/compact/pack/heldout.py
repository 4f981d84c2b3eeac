"""Held-out measurements of a face embedder: pairs, verification, identification, timing.

The same held-out chips and pairs measure every candidate and baseline of ``build-pack``, so
their numbers compare; timings are taken in turns so that load from other processes hits all
models alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.face.gallery import Gallery, MatchStatus
from tools.compact.evaluate.verify import best_threshold, cross_validated_accuracy, threshold_at_far

TIMING_ROUNDS = 20
TIMING_RUNS = 5  # per model and round
PAIRS_PER_CLASS = 1500


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the lowest cosine between matching rows of ``a`` and ``b``."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    num = (a * b).sum(axis=1)
    return float(np.min(num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def embed(model: Any, chips: np.ndarray) -> np.ndarray:
    """Run ``model`` on ``chips`` in batches of 16; return the stacked embeddings."""
    return np.concatenate(
        [model.run({"chip": chips[i : i + 16]})[0] for i in range(0, len(chips), 16)]
    )


def interleaved_ms(
    runs: dict[str, Callable[[], object]], rounds: int = TIMING_ROUNDS, per_round: int = TIMING_RUNS
) -> dict[str, float]:
    """Best wall time (ms) of each callable, taken in turns so that all see the same load.

    On a shared machine the fastest run is the one not slowed; measuring every model in each
    round keeps a busy spell from favouring the ones timed before or after it.
    """
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                best[name] = min(best[name], (time.perf_counter() - start) * 1000)
    return best


@dataclass(frozen=True)
class EvalSet:
    """Held-out chips with their identities, and the pairs drawn from them."""

    chips: np.ndarray
    people: list[str]
    pairs: list[tuple[int, int, bool]]


def make_eval_set(chips: np.ndarray, people: list[str], seed: int) -> EvalSet:
    """Draw same/different pairs from held-out chips (deterministic)."""
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[int]] = {}
    for index, person in enumerate(people):
        by_person.setdefault(person, []).append(index)
    names = sorted(p for p, idx in by_person.items() if len(idx) >= 2)
    possible = sum(len(by_person[n]) * (len(by_person[n]) - 1) // 2 for n in names)
    per_class = min(PAIRS_PER_CLASS, possible)
    same: set[tuple[int, int, bool]] = set()
    different: set[tuple[int, int, bool]] = set()
    while len(same) < per_class:
        person = names[rng.integers(len(names))]
        i, j = sorted(rng.choice(by_person[person], 2, replace=False).tolist())
        same.add((i, j, True))
    while len(different) < per_class:
        a, b = rng.choice(len(names), 2, replace=False)
        i = int(rng.choice(by_person[names[a]]))
        j = int(rng.choice(by_person[names[b]]))
        different.add((min(i, j), max(i, j), False))
    return EvalSet(chips, people, sorted(same) + sorted(different))


def verification(embeddings: np.ndarray, eval_set: EvalSet) -> dict[str, float]:
    """Accuracy (10-fold best threshold) and calibrated thresholds from the held-out pairs."""
    i, j, same = (np.array(column) for column in zip(*eval_set.pairs, strict=True))
    distances = np.linalg.norm(embeddings[i] - embeddings[j], axis=1)
    same = same.astype(bool)
    return {
        "lfw_accuracy": round(cross_validated_accuracy(distances, same), 4),
        "best_threshold": round(best_threshold(distances, same), 4),
        "threshold_far_0_1": round(threshold_at_far(distances, same, 0.001), 4),
    }


def identification(
    embeddings: np.ndarray, people: list[str], threshold: float, enroll: int = 3
) -> dict[str, float]:
    """TAR/FAR with ``enroll`` faces per person for half the people; the rest are impostors.

    The first half, rounded up: 40 of 79 identities, as ``identify --gallery-people 40``.
    """
    names = sorted(set(people))
    known = set(names[: (len(names) + 1) // 2])
    gallery = Gallery(threshold)
    seen: dict[str, int] = {}
    probes = []
    for index, person in enumerate(people):
        if person in known and seen.get(person, 0) < enroll:
            gallery.add(person, embeddings[index])
            seen[person] = seen.get(person, 0) + 1
        else:
            probes.append(index)
    accepted_right = accepted_impostor = known_probes = impostor_probes = 0
    for index in probes:
        match = gallery.match(embeddings[index])
        if people[index] in known:
            known_probes += 1
            accepted_right += match.status is MatchStatus.MATCH and match.person == people[index]
        else:
            impostor_probes += 1
            accepted_impostor += match.status is MatchStatus.MATCH
    return {
        "tar": round(accepted_right / max(known_probes, 1), 4),
        "far": round(accepted_impostor / max(impostor_probes, 1), 4),
    }


def unlock_threshold(embeddings: np.ndarray, people: list[str], start: float) -> float:
    """Return the largest threshold (step 0.01, at most ``start``) accepting no impostor.

    0.02 lower, as a margin, and checked again; 0.0 when no positive distance keeps every
    impostor out (a candidate with no door: its door TAR is 0).
    """
    threshold = start
    while threshold > 0 and identification(embeddings, people, threshold)["far"] > 0:
        threshold = round(threshold - 0.01, 6)
    limit = round(threshold - 0.02, 2)  # a margin below the last accepted impostor
    if limit <= 0 or identification(embeddings, people, limit)["far"] > 0:
        return 0.0
    return limit

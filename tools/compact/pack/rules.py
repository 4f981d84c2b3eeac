"""The fixed rules that pick the shipped tiers, and the goals each tier is checked against.

Goals (issue 20), on every backend, 1 thread:

| tier | verification, 10-fold | door: owners' TAR per frame at zero dev FAR | embedder ms |
|---|---|---|---|
| accurate | >= 99.0 % | >= 90 % | (the reference) |
| balanced | >= 98.8 % | >= 80 % | <= 0.5x accurate |
| fast | >= 98.0 % | >= 60 % | <= 0.3x accurate |

accurate = the most accurate candidate (then the best door TAR); balanced and fast = the
fastest candidate meeting the tier's goals, else the fastest meeting the tier's fallback pair
of goals in order (the rest then shows as missed), else accurate's model. balanced keeps
accuracy and door before speed; fast keeps speed first (accuracy and speed, then door and
speed: the owners' TAR at the door is the accuracy a door needs) before accuracy and door, as a
slow machine needs a tier that runs, and every tier's door distance still lets no dev impostor
in. No balanced or fast pick falls below :data:`ACCURACY_FLOOR` on the held-out pairs. Speed is
the worse of the two backends' ratios to accurate's ms. The pack must fit 30 MB; it may grow
to 45 MB only when that meets more goals, and the report says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tools.compact.errors import ToolError
from tools.compact.pack.candidates import Candidate

MAX_PACK_BYTES = 30_000_000  # "30 MB": decimal, the stricter reading
MAX_PACK_BYTES_WITH_REASON = 45_000_000
BACKENDS = ("onnxruntime", "ncnn")


@dataclass(frozen=True)
class TierGoal:
    """What a tier must reach on every backend."""

    accuracy: float  # 10-fold verification on the dev pairs
    door_tar: float  # owners' per-frame TAR at the door distance (no dev impostor passes)
    speed: float | None  # ms at most this fraction of accurate's
    fallbacks: tuple[tuple[str, ...], ...] = ()  # goal parts kept, in order, when not all are


EVERY_PART = ("accuracy", "door", "speed")
KEEP_DOOR = ("accuracy", "door")
KEEP_SPEED = ("accuracy", "speed")
KEEP_SPEED_AND_DOOR = ("door", "speed")
ACCURACY_FLOOR = 0.95  # no tier ships a model below this on the held-out pairs, whatever it keeps
GOALS = {
    "accurate": TierGoal(0.990, 0.90, None),
    "balanced": TierGoal(0.988, 0.80, 0.5, (KEEP_DOOR, KEEP_SPEED)),
    "fast": TierGoal(0.980, 0.60, 0.3, (KEEP_SPEED, KEEP_SPEED_AND_DOOR, KEEP_DOOR)),
}


def accuracy(candidate: Candidate) -> float:
    """Return the lower verification accuracy of the two backends."""
    metrics = candidate.metrics
    return float(min(metrics["lfw_accuracy"], metrics.get("lfw_accuracy_ncnn", 1.0)))


def speed(candidate: Candidate, accurate: Candidate) -> float:
    """Return the worse of the backends' ms ratios to ``accurate``."""
    ratios = [
        candidate.metrics[f"ms_per_face_{backend}"] / accurate.metrics[f"ms_per_face_{backend}"]
        for backend in BACKENDS
        if f"ms_per_face_{backend}" in candidate.metrics
    ]
    return float(max(ratios))


def met(candidate: Candidate, goal: TierGoal, accurate: Candidate) -> dict[str, bool]:
    """Return which of ``goal``'s parts ``candidate`` reaches."""
    return {
        "accuracy": accuracy(candidate) >= goal.accuracy - 1e-9,
        "door": candidate.metrics["door_tar"] >= goal.door_tar - 1e-9,
        "speed": goal.speed is None or speed(candidate, accurate) <= goal.speed + 1e-9,
    }


def choose_tiers(candidates: list[Candidate], budget: int) -> dict[str, Candidate]:
    """Apply the tier rules to ``candidates`` whose files together fit ``budget`` bytes.

    A tier whose pick would break the budget reuses a model already chosen (no extra bytes).
    """
    fitting = [c for c in candidates if c.size <= budget]
    if not fitting:
        raise ToolError(f"no face embedder fits {budget:,d} bytes")
    accurate = max(
        fitting,
        key=lambda c: (accuracy(c), c.metrics["door_tar"], -c.metrics["ms_per_face_onnxruntime"]),
    )
    chosen = {"accurate": accurate}
    for tier in ("balanced", "fast"):
        used = {id(c): c for c in chosen.values()}
        spare = budget - sum(c.size for c in used.values())
        pool = [
            c
            for c in candidates
            if (id(c) in used or c.size <= spare) and accuracy(c) >= ACCURACY_FLOOR - 1e-9
        ]
        reached = {id(c): met(c, GOALS[tier], accurate) for c in pool}
        parts = [EVERY_PART, *GOALS[tier].fallbacks]
        found = next(
            (
                kept
                for wanted in parts
                if (kept := [c for c in pool if all(reached[id(c)][p] for p in wanted)])
            ),
            [accurate],
        )
        chosen[tier] = min(found, key=lambda c: (speed(c, accurate), -accuracy(c)))
    return chosen


def goals_met(tiers: dict[str, Candidate]) -> int:
    """Return how many goal parts the tiers reach together."""
    accurate = tiers["accurate"]
    return sum(sum(met(c, GOALS[tier], accurate).values()) for tier, c in tiers.items())


def choose_pack(candidates: list[Candidate], other_bytes: int) -> tuple[dict[str, Candidate], str]:
    """Return the tiers within 30 MB, or within 45 MB when that meets more goals, and why.

    ``other_bytes`` is what the pack holds besides the embedders (detectors, speech, commands).
    """
    small = choose_tiers(candidates, MAX_PACK_BYTES - other_bytes)
    large = choose_tiers(candidates, MAX_PACK_BYTES_WITH_REASON - other_bytes)
    if goals_met(large) <= goals_met(small):
        return small, ""
    names = ", ".join(f"{tier} {c.name} ({c.size / 1e6:.1f} MB)" for tier, c in large.items())
    within = ", ".join(f"{tier} {c.name}" for tier, c in small.items())
    reason = (
        f"over 30 MB: {names} meet {goals_met(large)} goal parts, the best 30 MB choice "
        f"({within}) {goals_met(small)}"
    )
    return large, reason


def check_goals(tiers: dict[str, Candidate]) -> list[dict[str, Any]]:
    """Each tier's measured values against its goal, per backend."""
    accurate = tiers["accurate"]
    rows = []
    for tier, candidate in tiers.items():
        goal, m = GOALS[tier], candidate.metrics
        reached = met(candidate, goal, accurate)
        rows.append(
            {
                "tier": tier,
                "embedder": candidate.name,
                "accuracy": {"onnxruntime": m["lfw_accuracy"], "ncnn": m["lfw_accuracy_ncnn"]},
                "door_tar": {b: m[f"door_tar_{b}"] for b in BACKENDS},
                "unlock_threshold": m["unlock_threshold"],
                "ms": {b: m[f"ms_per_face_{b}"] for b in BACKENDS},
                "speed": round(speed(candidate, accurate), 3),
                "goal": {"accuracy": goal.accuracy, "door_tar": goal.door_tar, "speed": goal.speed},
                "met": reached,
            }
        )
    return rows

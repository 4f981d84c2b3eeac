"""The fixed rules that pick the shipped tiers, and the goals each tier is checked against."""

from __future__ import annotations

from typing import Any

from tools.compact.errors import ToolError
from tools.compact.pack.candidates import Candidate

MAX_PACK_BYTES = 30_000_000  # "30 MB": decimal, the stricter reading
BALANCED_LOSS = 0.005  # at most 0.5 pt below the fp32 net
FAST_LOSS = 0.015  # fast may lose 1.5 pt, but only when it runs in 0.3x the fp32 net's time
FAST_FRACTION = 0.3


def loss(candidate: Candidate, reference: dict[str, float]) -> float:
    """Accuracy lost against the fp32 net: the worse of the backends ``reference`` names.

    ``reference`` maps an accuracy metric (``lfw_accuracy`` for onnxruntime,
    ``lfw_accuracy_ncnn``) to the fp32 net's accuracy on that backend.
    """
    return float(
        max(
            value - candidate.metrics[metric]
            for metric, value in reference.items()
            if metric in candidate.metrics
        )
    )


def choose_tiers(
    candidates: list[Candidate],
    budget: int | None = None,
    backend: str = "onnxruntime",
    reference: dict[str, float] | None = None,
    fp32_ms: float | None = None,
) -> dict[str, Candidate]:
    """Apply the fixed tier rules (the goals of issue 5) to ``candidates``.

    accurate = best accuracy within ``budget`` bytes; balanced = fastest that loses at most
    0.5 pt; fast = fastest that loses at most 1.5 pt if it runs in at most 0.3x ``fp32_ms``,
    else the balanced rule. The loss is against ``reference`` (the fp32 net's accuracy per
    backend, see :func:`loss`); both default to the accurate pick's own. A tier whose pick
    would break the budget reuses a model already chosen (no extra bytes). Speed is the ms
    per face on ``backend``.
    """
    key = f"ms_per_face_{backend}"
    limit = budget if budget is not None else sum(c.size for c in candidates)
    fitting = [c for c in candidates if c.size <= limit]
    if not fitting:
        raise ToolError(f"no face embedder fits {limit:,d} bytes")
    accurate = max(fitting, key=lambda c: (c.metrics["lfw_accuracy"], -c.metrics[key]))
    reference = reference or {"lfw_accuracy": accurate.metrics["lfw_accuracy"]}
    fastest_allowed = FAST_FRACTION * (fp32_ms or accurate.metrics[key])
    chosen = {"accurate": accurate}

    def near(most: float, slowest: float = float("inf")) -> list[Candidate]:
        used = {id(c): c for c in chosen.values()}
        spare = limit - sum(c.size for c in used.values())
        return [
            c
            for c in candidates
            if (c is accurate or loss(c, reference) <= most + 1e-9)
            and (id(c) in used or c.size <= spare)
            and c.metrics[key] <= slowest
        ]

    def quickest(found: list[Candidate]) -> Candidate:
        return min(found, key=lambda c: (c.metrics[key], -c.metrics["lfw_accuracy"]))

    chosen["balanced"] = quickest(near(BALANCED_LOSS))
    chosen["fast"] = quickest(near(FAST_LOSS, fastest_allowed) or near(BALANCED_LOSS))
    return chosen


# (tier, backend, baseline, speed-up at least, accuracy loss at most) from issue 5
GOALS = (
    ("balanced", "onnxruntime", "plain int8", 1.5, BALANCED_LOSS),
    ("fast", "onnxruntime", "plain int8", 1.5, BALANCED_LOSS),
    ("fast", "onnxruntime", "fp32 reference", 1 / FAST_FRACTION, FAST_LOSS),
    ("balanced", "ncnn", "ncnn fp32", 1.5, BALANCED_LOSS),
    ("fast", "ncnn", "ncnn fp32", 1.5, BALANCED_LOSS),
    ("fast", "ncnn", "ncnn fp32", 1 / FAST_FRACTION, FAST_LOSS),
)


def check_goals(
    tiers: dict[str, Candidate], baselines: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each goal of :data:`GOALS` with the tier's measured speed-up and accuracy loss.

    The loss is against the fp32 net on the same backend (the reference on onnxruntime).
    """
    reference = {"onnxruntime": "fp32 reference", "ncnn": "ncnn fp32"}
    rows = []
    for tier, backend, baseline, speedup, loss in GOALS:
        metrics = tiers[tier].metrics
        suffix = "" if backend == "onnxruntime" else "_ncnn"
        measured_speedup = baselines[baseline]["ms"] / metrics[f"ms_per_face_{backend}"]
        measured_loss = (
            baselines[reference[backend]]["lfw_accuracy"] - metrics[f"lfw_accuracy{suffix}"]
        )
        rows.append(
            {
                "tier": tier,
                "backend": backend,
                "baseline": baseline,
                "speedup": round(measured_speedup, 2),
                "loss": round(measured_loss, 4),
                "goal": f">= {speedup:.2f}x, <= {loss * 100:.1f} pt",
                "met": measured_speedup >= speedup and measured_loss <= loss + 1e-9,
            }
        )
    return rows

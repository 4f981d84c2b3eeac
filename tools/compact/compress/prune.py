"""Structured pruning of dependency groups with calibration-only reconstruction.

1. ``analyze``: channel importance (activation-weighted weight norms of every consumer) and
   each group's sensitivity (output cosine loss when only that group is pruned at a few ratios).
2. ``allocate``: spend a FLOPs budget greedily on the groups whose loss grows slowest per
   FLOP saved.
3. ``remove_channels``: delete the least important units of each group everywhere they occur.
4. ``reconstruct``: layer by layer, re-solve each dense layer's weights by ridge least squares
   so that, on the pruned model's own activations, it reproduces the unpruned layer's outputs
   (He et al. 2017, ThiNet), sampling spatial positions to stay fast. A layer feeding a
   residual Add matches the Add instead (so it also corrects the skip branch's error); the
   ridge strength is chosen on held-out calibration samples; a Gemm making a graph output is
   finally rescaled to the original output's spread (least squares shrinks embeddings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from tools.compact.compress.channels import dense_axes, dense_consumers, remove_channels
from tools.compact.compress.graph import (
    Feed,
    Graph,
    first_sample,
    session,
    tensor_shapes,
    with_outputs,
)
from tools.compact.compress.groups import Dependencies, find_groups
from tools.compact.compress.measure import FlopTerm, count_flops, fidelity, flop_terms, run_outputs
from tools.compact.compress.reconstruct import reconstruct
from tools.compact.progress import progress_bar

SENSITIVITY_RATIOS = (0.25, 0.5, 0.75)


def channel_energy(
    model: onnx.ModelProto, feeds: Sequence[Feed], names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Mean square of every channel (axis 1) of ``names`` over the calibration feeds."""
    runner = session(with_outputs(model, names))
    sums: dict[str, np.ndarray] = {}
    count = 0
    for feed in feeds:
        for name, value in zip(names, runner.run(list(names), feed), strict=True):
            axes = tuple(a for a in range(value.ndim) if a != 1)
            sums[name] = sums.get(name, 0) + (value.astype(np.float64) ** 2).sum(axis=axes)
        count += len(next(iter(feed.values())))
    return {name: total / count for name, total in sums.items()}


def importance(
    model: onnx.ModelProto, deps: Dependencies, feeds: Sequence[Feed]
) -> dict[int, np.ndarray]:
    """Score every unit by its share of each consumer's output energy, summed.

    A consumer's share from input channel c is E[x_c^2] * ||W[:, c]||^2 over the sum of that
    term across channels (the output energy lost if x_c were zeroed, ignoring correlations).
    """
    view = Graph(model)
    consumers = [n for n in dense_consumers(view) if n.input[0] not in view.input_names]
    energy = channel_energy(model, feeds, sorted({n.input[0] for n in consumers}))
    share: dict[str, np.ndarray] = {}
    for node in consumers:
        weight = view.array(node.input[1]).astype(np.float64)
        in_axis, _ = dense_axes(view, node)
        axes = tuple(a for a in range(weight.ndim) if a != in_axis)
        term = energy[node.input[0]] * (weight**2).sum(axis=axes)
        x = node.input[0]
        share[x] = share.get(x, 0) + term / max(float(term.sum()), 1e-30)
    scores: dict[int, np.ndarray] = {}
    for group in deps.groups:
        values = [
            sum(float(share[t][list(c)].sum()) for t, c in unit.items() if t in share)
            for unit in group.units
        ]
        scores[group.index] = np.array(values)
    return scores


def _choose(scores: np.ndarray, remove: int) -> list[int]:
    """Return the indices of the ``remove`` least important units (stable for ties)."""
    return sorted(np.argsort(scores, kind="stable")[:remove].tolist())


@dataclass
class Analysis:
    """Everything the allocation needs, computed once per model and calibration set."""

    deps: Dependencies
    scores: dict[int, np.ndarray]
    losses: dict[int, list[float]]  # loss at SENSITIVITY_RATIOS for every prunable group
    terms: list[FlopTerm]
    ratios: tuple[float, ...] = SENSITIVITY_RATIOS

    @property
    def flops(self) -> int:
        """FLOPs of the unpruned model (one sample)."""
        return count_flops(self.terms, self.deps.channels_after({}))

    def loss_at(self, index: int, ratio: float) -> float:
        """Interpolated (and beyond the last ratio extrapolated) sensitivity of a group."""
        xs = [0.0, *self.ratios]
        ys = np.maximum.accumulate([0.0, *self.losses[index]])
        if ratio <= xs[-1]:
            return float(np.interp(ratio, xs, ys))
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return float(ys[-1] + 2 * slope * (ratio - xs[-1]))


def analyze(
    model: onnx.ModelProto,
    feeds: Sequence[Feed],
    eval_feeds: Sequence[Feed],
    *,
    progress: bool = True,
) -> Analysis:
    """Find the groups, score their units and measure each group's sensitivity."""
    shapes = tensor_shapes(model, first_sample(feeds[0]))
    deps = find_groups(model, shapes)
    scores = importance(model, deps, feeds)
    reference = run_outputs(model, eval_feeds)
    losses: dict[int, list[float]] = {}
    prunable = [g for g in deps.groups if g.prunable]
    for group in progress_bar(prunable, "sensitivity", progress):
        losses[group.index] = []
        for ratio in SENSITIVITY_RATIOS:
            count = min(group.size - 1, max(1, round(ratio * group.size)))
            removal = deps.removal({group.index: _choose(scores[group.index], count)})
            pruned = remove_channels(model, removal, deps)
            fid = fidelity(run_outputs(pruned, eval_feeds), reference)
            losses[group.index].append(max(0.0, 1.0 - fid.cosine_mean))
    return Analysis(deps, scores, losses, flop_terms(model, shapes))


def allocate(
    analysis: Analysis, target: float, *, max_ratio: float = 0.6, multiple: int = 4
) -> dict[int, int]:
    """Units to keep per group so that FLOPs <= ``target`` x the original (greedy).

    Each step removes ``multiple`` units (or 1/16 of the group, whichever is larger) from the
    group whose interpolated sensitivity grows least per FLOP saved; no group loses more than
    ``max_ratio`` of its units.
    """
    deps = analysis.deps
    kept = {g.index: g.size for g in deps.groups if g.index in analysis.losses}
    steps = {
        i: max(multiple, math.ceil(deps.groups[i].size / 16 / multiple) * multiple) for i in kept
    }
    floor = {i: max(1, math.ceil(deps.groups[i].size * (1 - max_ratio))) for i in kept}
    budget = target * analysis.flops
    current = count_flops(analysis.terms, deps.channels_after(kept))
    while current > budget:
        best: tuple[float, int, int] | None = None  # (loss per FLOP, -saved, group)
        for index, keep in kept.items():
            new = max(keep - steps[index], floor[index])
            if new == keep:
                continue
            size = deps.groups[index].size
            trial = count_flops(analysis.terms, deps.channels_after(kept | {index: new}))
            saved = current - trial
            if saved <= 0:
                continue
            cost = analysis.loss_at(index, 1 - new / size) - analysis.loss_at(
                index, 1 - keep / size
            )
            candidate = (cost / saved, -saved, index)
            if best is None or candidate < best:
                best = candidate
        if best is None:
            break
        _, saved, index = best
        current += saved
        kept[index] = max(kept[index] - steps[index], floor[index])
    return kept


def removal_for(analysis: Analysis, kept: Mapping[int, int]) -> dict[str, list[int]]:
    """Return the channels to remove when every group keeps its ``kept`` most important units."""
    choice = {
        index: _choose(analysis.scores[index], analysis.deps.groups[index].size - keep)
        for index, keep in kept.items()
    }
    return analysis.deps.removal(choice)


@dataclass
class PruneResult:
    """A pruned model and how it was obtained."""

    model: onnx.ModelProto
    kept: dict[int, int]
    removal: dict[str, list[int]]
    flops_before: int
    flops_after: int


def prune(
    model: onnx.ModelProto,
    feeds: Sequence[Feed],
    target_flops: float,
    *,
    with_reconstruction: bool = True,
    eval_feeds: Sequence[Feed] | None = None,
    analysis: Analysis | None = None,
    max_ratio: float = 0.6,
    seed: int = 0,
    progress: bool = True,
) -> PruneResult:
    """Prune ``model`` to about ``target_flops`` x its FLOPs using calibration ``feeds``."""
    analysis = analysis or analyze(model, feeds, eval_feeds or feeds[:2], progress=progress)
    kept = allocate(analysis, target_flops, max_ratio=max_ratio)
    removal = removal_for(analysis, kept)
    pruned = remove_channels(model, removal, analysis.deps)
    if with_reconstruction:
        pruned = reconstruct(model, pruned, removal, feeds, seed=seed, progress=progress)
    after = count_flops(analysis.terms, analysis.deps.channels_after(kept))
    return PruneResult(pruned, kept, removal, analysis.flops, after)

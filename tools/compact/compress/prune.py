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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from tools.compact.compress.graph import (
    Feed,
    Graph,
    attrs,
    copy_model,
    first_sample,
    run_tensors,
    session,
    set_attr,
    tensor_shapes,
    with_outputs,
)
from tools.compact.compress.groups import Dependencies, find_groups
from tools.compact.compress.measure import FlopTerm, count_flops, fidelity, flop_terms, run_outputs

SENSITIVITY_RATIOS = (0.25, 0.5, 0.75)


def progress_bar[T](items: Sequence[T], desc: str, enabled: bool) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar if enabled, without tqdm's lingering monitor thread."""
    if not enabled:
        return items
    from tqdm import tqdm

    tqdm.monitor_interval = 0
    return tqdm(items, desc=desc)


def _delete(array: np.ndarray, indices: Sequence[int], axis: int) -> np.ndarray:
    return np.delete(array, list(indices), axis=axis) if indices else array


def _dense_axes(view: Graph, node: onnx.NodeProto) -> tuple[int, int]:
    """(input axis, output axis) of the weight of a dense node."""
    if node.op_type == "Conv":
        return 1, 0
    trans = node.op_type == "Gemm" and bool(attrs(node).get("transB", 0))
    return (1, 0) if trans else (0, 1)


def remove_channels(
    model: onnx.ModelProto, removal: Mapping[str, Sequence[int]], deps: Dependencies
) -> onnx.ModelProto:
    """Return a copy of ``model`` without the given channels (from ``Dependencies.removal``)."""
    view = Graph(copy_model(model))
    shapes = deps.shapes
    for node in list(view.graph.node):
        x, y = (node.input[0] if node.input else ""), node.output[0]
        ins, outs = removal.get(x, []), removal.get(y, [])
        if not ins and not outs:
            continue
        op = node.op_type
        if op == "Conv":
            weight = view.array(node.input[1])
            group = int(attrs(node).get("group", 1))
            if group == 1:
                weight = _delete(weight, ins, 1)
            else:
                set_attr(node, "group", group - len(ins))
            view.set_node_param(node, 1, _delete(weight, outs, 0))
            if len(node.input) > 2 and node.input[2]:
                view.set_node_param(node, 2, _delete(view.array(node.input[2]), outs, 0))
        elif op in ("Gemm", "MatMul"):
            in_axis, out_axis = _dense_axes(view, node)
            weight = _delete(_delete(view.array(node.input[1]), ins, in_axis), outs, out_axis)
            view.set_node_param(node, 1, weight)
            if len(node.input) > 2 and node.input[2] and outs:
                bias = view.array(node.input[2])
                if bias.ndim and bias.shape[-1] == shapes[y][1]:
                    view.set_node_param(node, 2, _delete(bias, outs, bias.ndim - 1))
        elif op == "Pad":
            _shrink_pad(view, node, shapes[x][1], shapes[y][1], outs)
        elif op == "Reshape":
            target = view.array(node.input[1]).copy()
            if target[1] == shapes[y][1]:
                target[1] -= len(outs)
                view.set_node_param(node, 1, target)
        elif op in ("BatchNormalization", "InstanceNormalization"):
            for index in range(1, len(node.input)):
                view.set_node_param(node, index, _delete(view.array(node.input[index]), outs, 0))
        else:
            _shrink_broadcast_constants(view, node, len(shapes[y]), shapes[y][1], outs)
    del view.graph.value_info[:]
    onnx.checker.check_model(view.model)
    return view.model


def _shrink_pad(
    view: Graph, node: onnx.NodeProto, cin: int, cout: int, removed: Sequence[int]
) -> None:
    from_input = len(node.input) > 1 and bool(node.input[1])
    pads = list(view.array(node.input[1]) if from_input else attrs(node)["pads"])
    rank = len(pads) // 2
    begin, end = int(pads[1]), int(pads[rank + 1])
    gone = set(removed)
    pads[1] = sum(1 for c in range(begin) if c not in gone)
    pads[rank + 1] = sum(1 for c in range(begin + cin, cout) if c not in gone)
    assert end >= pads[rank + 1]
    if from_input:
        view.set_node_param(node, 1, np.array(pads, np.int64))
    else:
        set_attr(node, "pads", [int(p) for p in pads])


def _shrink_broadcast_constants(
    view: Graph, node: onnx.NodeProto, rank: int, channels: int, removed: Sequence[int]
) -> None:
    for index, name in enumerate(node.input):
        if not view.is_const(name) or channels == 1:
            continue
        value = view.array(name)
        axis = 1 - (rank - value.ndim)
        if axis >= 0 and value.shape[axis] == channels:
            view.set_node_param(node, index, _delete(value, removed, axis))


def _dense_consumers(view: Graph) -> list[onnx.NodeProto]:
    """Dense nodes with a constant weight whose input channels map to weight columns."""
    dense = []
    for node in view.topological():
        if node.op_type not in ("Conv", "Gemm", "MatMul") or not view.is_const(node.input[1]):
            continue
        if node.op_type == "Conv" and int(attrs(node).get("group", 1)) != 1:
            continue
        if node.op_type == "Gemm" and attrs(node).get("transA", 0):
            continue
        if node.op_type == "MatMul" and view.array(node.input[1]).ndim != 2:
            continue
        dense.append(node)
    return dense


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
    consumers = [n for n in _dense_consumers(view) if n.input[0] not in view.input_names]
    energy = channel_energy(model, feeds, sorted({n.input[0] for n in consumers}))
    share: dict[str, np.ndarray] = {}
    for node in consumers:
        weight = view.array(node.input[1]).astype(np.float64)
        in_axis, _ = _dense_axes(view, node)
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
class _Layer:
    node: onnx.NodeProto
    target: str  # the original tensor to match: the layer's output, or the residual Add's
    other: str | None = None  # the Add's other input, subtracted from the target when set
    positions: list[np.ndarray] = field(default_factory=list)  # per feed: (rows, 1 + spatial)
    targets: list[np.ndarray] = field(default_factory=list)  # per feed: (rows, C_out kept)


def _residual_add(
    view: Graph, node: onnx.NodeProto, removal: Mapping[str, Sequence[int]]
) -> tuple[str, str] | None:
    """(Add output, other Add input) if the layer's output only feeds a residual Add.

    Matching the Add's output (minus the pruned model's other branch) instead of the layer's
    own output also corrects the error the skip connection carries. A Pad in between is
    allowed when it only appends (no leading pads, no new channels).
    """
    out = node.output[0]
    readers = view.consumers.get(out, [])
    if len(readers) != 1 or out in view.output_names:
        return None
    reader = readers[0]
    if reader.op_type == "Pad" and len(reader.input) > 1 and view.is_const(reader.input[1]):
        pads = view.array(reader.input[1])
        if pads[: len(pads) // 2].any() or pads[len(pads) // 2 + 1] or len(reader.input) > 2:
            return None
        out, readers = reader.output[0], view.consumers.get(reader.output[0], [])
        if len(readers) != 1:
            return None
        reader = readers[0]
    if reader.op_type != "Add" or len(reader.input) != 2 or reader.input[0] == reader.input[1]:
        return None
    other = reader.input[1] if reader.input[0] == out else reader.input[0]
    if view.is_const(other):
        return None
    if list(removal.get(reader.output[0], [])) != list(removal.get(node.output[0], [])):
        return None
    return reader.output[0], other


def _patches(node: onnx.NodeProto, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """im2col rows of a 2-D (or 1-D) Conv's input at the sampled output positions."""
    options = attrs(node)
    spatial = x.ndim - 2
    kernel = list(options.get("kernel_shape") or [])
    strides = list(options.get("strides", [1] * spatial))
    dilations = list(options.get("dilations", [1] * spatial))
    pads = list(options.get("pads", [0] * 2 * spatial))
    if options.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise ValueError(f"{node.name}: auto_pad is not supported for reconstruction")
    widths = [(0, 0), (0, 0), *((pads[i], pads[i + spatial]) for i in range(spatial))]
    padded = np.pad(x, widths)
    index: list[np.ndarray] = [positions[:, 0][:, None, *([None] * spatial)]]
    index.append(np.arange(x.shape[1])[None, :, *([None] * spatial)])
    for axis in range(spatial):
        offsets = np.arange(kernel[axis]) * dilations[axis]
        shape = [1, 1] + [1] * spatial
        shape[2 + axis] = kernel[axis]
        origin = positions[:, 1 + axis] * strides[axis]
        index.append(origin.reshape(-1, *([1] * (1 + spatial))) + offsets.reshape(shape))
    return padded[tuple(index)].reshape(len(positions), -1)


def _sample_positions(
    rng: np.random.Generator, batch: int, out_shape: Sequence[int], rows: int
) -> np.ndarray:
    """Random (sample, *spatial) output positions, ``rows`` per feed at most."""
    spatial = [int(d) for d in out_shape[2:]]
    total = batch * int(np.prod(spatial, dtype=np.int64))
    picks = np.sort(rng.choice(total, size=min(rows, total), replace=False))
    return np.stack(np.unravel_index(picks, (batch, *spatial)), axis=1)


HOLD_OUT_EVERY = 5  # every 5th calibration sample validates the ridge strength
RIDGE_GRID = (0.1, 1.0, 10.0, 100.0)  # x mean diagonal of a'a; smaller ones barely mattered on dlib


def _ridge(gram: np.ndarray, cross: np.ndarray, w0: np.ndarray, alpha: float) -> np.ndarray:
    """Solve min |aW - y|^2 + l|W - W0|^2 given a'a and a'y; l = alpha * mean diagonal."""
    lam = alpha * max(float(np.trace(gram)) / max(len(gram), 1), 1e-30)
    return np.linalg.solve(gram + lam * np.eye(len(gram)), cross + lam * w0)


def _solve(
    a: np.ndarray,
    y: np.ndarray,
    w0: np.ndarray,
    with_bias: bool,
    held_out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Ridge least squares toward the current weights; the bias is an unregularized intercept.

    The strength is chosen among ``RIDGE_GRID`` on the ``held_out`` rows (whole calibration
    samples, never fitted), then the final fit uses all rows.
    """

    def fit(rows: np.ndarray, alphas: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
        a_mean = a[rows].mean(axis=0) if with_bias else np.zeros(a.shape[1])
        y_mean = y[rows].mean(axis=0) if with_bias else np.zeros(y.shape[1])
        centred = a[rows] - a_mean
        gram, cross = centred.T @ centred, centred.T @ (y[rows] - y_mean)
        solutions = [_ridge(gram, cross, w0, alpha) for alpha in alphas]
        return [(w, y_mean - a_mean @ w) for w in solutions]

    alpha = RIDGE_GRID[0]
    if held_out.any() and (~held_out).any():
        errors = [
            float(np.square(a[held_out] @ w + b - y[held_out]).sum())
            for w, b in fit(~held_out, RIDGE_GRID)
        ]
        alpha = RIDGE_GRID[int(np.argmin(errors))]
    ((weights, bias),) = fit(np.ones(len(a), bool), [alpha])
    return weights, (bias if with_bias else None)


def reconstruct(
    original: onnx.ModelProto,
    pruned: onnx.ModelProto,
    removal: Mapping[str, Sequence[int]],
    feeds: Sequence[Feed],
    *,
    rows: int = 32768,
    seed: int = 0,
    residual_targets: bool = True,
    match_spread: bool = True,
    progress: bool = True,
) -> onnx.ModelProto:
    """Re-solve every dense layer of ``pruned`` so its outputs match ``original``'s.

    Layers are processed in topological order; each sees the activations of the pruned model
    with the layers before it already reconstructed. ``rows`` spatial positions in total are
    sampled per layer (spread over the feeds). With ``residual_targets`` a layer that feeds a
    residual Add matches the original Add output minus the pruned model's skip branch. With
    ``match_spread`` a Gemm making a graph output is then rescaled to the original's spread.
    """
    rng = np.random.default_rng(seed)
    view = Graph(copy_model(pruned))
    layers = []
    for node in _dense_consumers(view):
        if node.input[0] in view.input_names:
            continue
        residual = _residual_add(view, node, removal) if residual_targets else None
        layers.append(_Layer(node, *residual) if residual else _Layer(node, node.output[0]))
    if not layers:
        return view.model
    names = sorted({layer.node.output[0] for layer in layers} | {layer.target for layer in layers})
    runner = session(with_outputs(original, names))
    per_feed = max(1, rows // len(feeds))
    for feed in feeds:
        values = dict(zip(names, runner.run(names, feed), strict=True))
        for layer in layers:
            value, target = values[layer.node.output[0]], values[layer.target]
            kept = np.setdiff1d(np.arange(target.shape[1]), removal.get(layer.target, []))
            if value.ndim > 2:
                where = _sample_positions(rng, len(value), value.shape, per_feed)
                picked = target[(where[:, 0], slice(None), *where[:, 1:].T)]
            else:
                where = np.arange(len(value))[:, None]
                picked = target
            layer.positions.append(where)
            layer.targets.append(picked[:, kept].astype(np.float64))
    for layer in progress_bar(layers, "reconstruct", progress):
        _refit(view, layer, feeds)
    if match_spread:
        _match_output_spread(original, view, feeds)
    onnx.checker.check_model(view.model)
    return view.model


def _match_output_spread(original: onnx.ModelProto, view: Graph, feeds: Sequence[Feed]) -> None:
    """Undo the shrinkage least squares causes at outputs made by a Gemm (an embedding's).

    Regression on imperfect inputs pulls outputs toward their mean, which shrinks distances
    between embeddings (and so moves a distance threshold). The output is rescaled about its
    mean so that its spread on the calibration data equals the original's; the scale and the
    shift fold into the Gemm's weights and bias.
    """
    gemms = [
        node
        for node in view.graph.node
        if node.op_type == "Gemm"
        and node.output[0] in view.output_names
        and view.is_const(node.input[1])
        and (len(node.input) < 3 or not node.input[2] or view.is_const(node.input[2]))
    ]
    if not gemms:
        return
    names = [node.output[0] for node in gemms]
    expected = run_tensors(original, feeds, names)
    actual = run_tensors(view.model, feeds, names)
    for node in gemms:
        y, z = expected[node.output[0]], actual[node.output[0]]
        options = attrs(node)
        scale = float(np.sqrt(np.square(y - y.mean(0)).sum() / np.square(z - z.mean(0)).sum()))
        shift = y.mean(0) - scale * z.mean(0)
        weight = view.array(node.input[1])
        view.set_node_param(node, 1, (weight * scale).astype(weight.dtype))
        beta = float(options.get("beta", 1.0))
        if len(node.input) > 2 and node.input[2]:
            bias = view.array(node.input[2])
            new = (np.broadcast_to(bias, shift.shape) * scale + shift / beta).astype(bias.dtype)
            view.set_node_param(node, 2, new)
        else:
            name = f"{node.output[0]}.bias"
            view.set_array(name, (shift / beta).astype(weight.dtype))
            node.input.append(name)
            view.reindex()


def _refit(view: Graph, layer: _Layer, feeds: Sequence[Feed]) -> None:
    """Solve one layer's weights on the current pruned model's own input activations."""
    node = layer.node
    x_name = node.input[0]
    fetch = [x_name] if layer.other is None else [x_name, layer.other]
    probe = Graph(with_outputs(view.model, fetch))
    probe.remove_unused()
    runner = session(probe.model)
    needed = set(probe.input_names)
    inputs, targets, samples = [], [], []
    seen = 0
    for feed, where, target in zip(feeds, layer.positions, layer.targets, strict=True):
        x, *other = runner.run(fetch, {k: v for k, v in feed.items() if k in needed})
        samples.append(seen + where[:, 0])
        seen += len(x)
        inputs.append(_patches(node, x, where) if node.op_type == "Conv" else x[where[:, 0]])
        if other:
            target = target - other[0][(where[:, 0], slice(None), *where[:, 1:].T)]
        targets.append(target)
    a = np.concatenate(inputs).astype(np.float64)
    y = np.concatenate(targets)
    weight = view.array(node.input[1])
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if has_bias and view.array(node.input[2]).size != y.shape[1]:
        has_bias = False
    if node.op_type == "Conv":
        w0 = weight.reshape(len(weight), -1).T.astype(np.float64)
    else:
        in_axis, _ = _dense_axes(view, node)
        w0 = (weight if in_axis == 0 else weight.T).astype(np.float64)
        options = attrs(node)
        if options.get("alpha", 1.0) != 1.0 or options.get("beta", 1.0) != 1.0:
            return
    held_out = np.concatenate(samples) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    solved, bias = _solve(a, y, w0, has_bias, held_out)
    if node.op_type == "Conv":
        new_weight = solved.T.reshape(weight.shape)
    else:
        new_weight = solved if _dense_axes(view, node)[0] == 0 else solved.T
    view.set_node_param(node, 1, new_weight.astype(weight.dtype))
    if has_bias and bias is not None:
        old = view.array(node.input[2])
        view.set_node_param(node, 2, bias.reshape(old.shape).astype(old.dtype))


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

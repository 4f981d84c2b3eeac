"""Calibration-only reconstruction of a pruned model, layer by layer.

Each dense layer's weights are re-solved by ridge least squares so that, on the pruned model's
own activations, it reproduces the unpruned layer's outputs (He et al. 2017, ThiNet), sampling
spatial positions to stay fast. A layer feeding a residual Add matches the Add instead (so it
also corrects the skip branch's error); the ridge strength is chosen on held-out calibration
samples; a Gemm making a graph output is finally rescaled to the original output's spread
(least squares shrinks embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from tools.compact.compress.channels import dense_axes, dense_consumers
from tools.compact.compress.graph import (
    Feed,
    Graph,
    attrs,
    copy_model,
    run_tensors,
    session,
    with_outputs,
)
from tools.compact.progress import progress_bar


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
    rows: np.ndarray = padded[tuple(index)].reshape(len(positions), -1)
    return rows


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


GRAM_CHUNK = 4096  # rows per product: bounded memory on wide layers (SFace's fc: 25,088 inputs)


def _products(
    a: np.ndarray, y: np.ndarray, rows: np.ndarray, a_mean: np.ndarray, y_mean: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return a'a and a'y of the centred ``rows``, summed over chunks of rows.

    Each product multiplies two separate arrays, so numpy calls GEMM: for ``x.T @ x`` it picks
    SYRK, which crashed (segmentation fault in OpenBLAS 0.3.30) on SFace's widest layer.
    """
    gram = np.zeros((a.shape[1], a.shape[1]))
    cross = np.zeros((a.shape[1], y.shape[1]))
    for start in range(0, len(rows), GRAM_CHUNK):
        chunk = rows[start : start + GRAM_CHUNK]
        part = a[chunk] - a_mean
        left = np.ascontiguousarray(part.T)
        gram += left @ part
        cross += left @ (y[chunk] - y_mean)
    return gram, cross


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
        gram, cross = _products(a, y, np.flatnonzero(rows), a_mean, y_mean)
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
    for node in dense_consumers(view):
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
        in_axis, _ = dense_axes(view, node)
        w0 = (weight if in_axis == 0 else weight.T).astype(np.float64)
        options = attrs(node)
        if options.get("alpha", 1.0) != 1.0 or options.get("beta", 1.0) != 1.0:
            return
    held_out = np.concatenate(samples) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    solved, bias = _solve(a, y, w0, has_bias, held_out)
    if node.op_type == "Conv":
        new_weight = solved.T.reshape(weight.shape)
    else:
        new_weight = solved if dense_axes(view, node)[0] == 0 else solved.T
    view.set_node_param(node, 1, new_weight.astype(weight.dtype))
    if has_bias and bias is not None:
        old = view.array(node.input[2])
        view.set_node_param(node, 2, bias.reshape(old.shape).astype(old.dtype))

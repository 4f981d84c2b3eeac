"""Graph passes that keep a model's outputs: constant folding, Conv+affine folding, cleanups.

Every pass edits a ``Graph`` in place and returns how many rewrites it made; ``simplify``
runs them to a fixed point on a copy and checks the result with ``onnx.checker``.
``store_weights_fp16`` changes only how a model's weights are stored.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from tools.compact.compress.graph import Graph, attrs, copy_model, set_attr

# Ops whose value is not a pure function of their (constant) inputs.
_NOT_FOLDABLE = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial"}
)
_MAX_FOLDED_ELEMENTS = 1 << 24


def fold_constants(view: Graph) -> int:
    """Evaluate nodes whose inputs are all initializers (Constant nodes too) into initializers."""
    outputs = set(view.output_names)
    folded = 0
    for node in view.topological():
        inputs = [name for name in node.input if name]
        if (
            node.op_type in _NOT_FOLDABLE
            or node.domain not in ("", "ai.onnx")
            or not all(view.is_const(name) for name in inputs)
            or any(name in outputs for name in node.output)
        ):
            continue
        values = ReferenceEvaluator(node).run(None, {name: view.array(name) for name in inputs})
        if sum(np.asarray(v).size for v in values) > _MAX_FOLDED_ELEMENTS:
            continue
        for name, value in zip(node.output, values, strict=True):
            if name:
                view.set_array(name, np.asarray(value))
        view.graph.node.remove(node)
        folded += 1
    if folded:
        view.reindex()
    return folded


def _bypass(view: Graph, node: onnx.NodeProto, source: str) -> bool:
    """Remove single-output ``node`` so that its readers read ``source``; False if impossible."""
    target = node.output[0]
    outputs = set(view.output_names)
    if target in outputs:
        producer = view.producer.get(source)
        if producer is None or source in outputs or len(view.consumers.get(source, [])) != 1:
            return False
        producer.output[list(producer.output).index(source)] = target
        view.graph.node.remove(node)
        view.reindex()
        return True
    view.graph.node.remove(node)
    view.reindex()
    view.rename_tensor(target, source)
    return True


def remove_identities(view: Graph) -> int:
    """Remove Identity nodes and inference-time Dropout (when its mask output is unused)."""
    removed = 0
    for node in list(view.graph.node):
        is_dropout = node.op_type == "Dropout" and not (len(node.output) > 1 and node.output[1])
        if (node.op_type == "Identity" or is_dropout) and _bypass(view, node, node.input[0]):
            removed += 1
    return removed


def cancel_transposes(view: Graph) -> int:
    """Merge Transpose pairs; pairs that compose to the identity disappear."""
    rewrites = 0
    for node in list(view.graph.node):
        if node.op_type != "Transpose" or node not in view.graph.node:
            continue
        first = view.producer.get(node.input[0])
        if first is None or first.op_type != "Transpose":
            continue
        if len(view.consumers[first.output[0]]) != 1 or first.output[0] in view.output_names:
            continue
        p1, p2 = attrs(first).get("perm"), attrs(node).get("perm")
        if p1 is None or p2 is None:
            continue
        composed = [p1[axis] for axis in p2]
        view.graph.node.remove(first)
        node.input[0] = first.input[0]
        set_attr(node, "perm", composed)
        view.reindex()
        if composed == sorted(composed):
            _bypass(view, node, node.input[0])
        rewrites += 1
    return rewrites


def _channel_vector(value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """Return a per-channel vector for a constant broadcast against [N, C, ...] of ``rank``."""
    if value.ndim > rank or value.size not in (1, channels):
        return None
    if value.size == 1:
        return np.full(channels, value.reshape(()), np.float64)
    shape = (1,) * (rank - value.ndim) + value.shape
    if shape[1] != channels:
        return None
    return value.reshape(channels).astype(np.float64)


def _affine_of(
    view: Graph, node: onnx.NodeProto, conv_out: str, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return (scale, shift) if ``node`` is y = scale * conv + shift per channel."""
    op, channels = node.op_type, weight.shape[0]
    if op == "BatchNormalization":
        if len(node.output) > 1 and any(node.output[1:]):
            return None
        if not all(view.is_const(name) for name in node.input[1:5]):
            return None
        gamma, beta, mean, var = (view.array(n).astype(np.float64) for n in node.input[1:5])
        scale = gamma / np.sqrt(var + float(attrs(node).get("epsilon", 1e-5)))
        return scale, beta - mean * scale
    if op not in ("Mul", "Add", "Sub", "Div") or len(node.input) != 2:
        return None
    other = node.input[1] if node.input[0] == conv_out else node.input[0]
    if other == conv_out or not view.is_const(other):
        return None
    if op in ("Sub", "Div") and node.input[0] != conv_out:
        return None
    vector = _channel_vector(view.array(other), channels, weight.ndim)
    if vector is None:
        return None
    ones, zeros = np.ones(channels), np.zeros(channels)
    return {
        "Mul": (vector, zeros),
        "Add": (ones, vector),
        "Sub": (ones, -vector),
        "Div": (1 / vector, zeros),
    }[op]


def fold_conv_affine(view: Graph) -> int:
    """Fold BatchNormalization and per-channel Mul/Add/Sub/Div by constants into the Conv."""
    folded = 0
    for conv in list(view.graph.node):
        if conv.op_type != "Conv" or conv not in view.graph.node:
            continue
        out = conv.output[0]
        readers = view.consumers.get(out, [])
        if len(readers) != 1 or out in view.output_names or not view.is_const(conv.input[1]):
            continue
        if len(conv.input) > 2 and conv.input[2] and not view.is_const(conv.input[2]):
            continue
        weight = view.array(conv.input[1]).astype(np.float64)
        channels = weight.shape[0]
        affine = _affine_of(view, readers[0], out, weight)
        if affine is None:
            continue
        scale, shift = affine
        weight *= scale.reshape(-1, *([1] * (weight.ndim - 1)))
        has_bias = len(conv.input) > 2 and bool(conv.input[2])
        bias = view.array(conv.input[2]).astype(np.float64) if has_bias else np.zeros(channels)
        dtype = view.array(conv.input[1]).dtype
        view.set_node_param(conv, 1, weight.astype(dtype))
        new_bias = (bias * scale + shift).astype(dtype)
        if has_bias:
            view.set_node_param(conv, 2, new_bias)
        else:
            name = f"{conv.name or out}.bias"
            while name in view.inits or name in view.producer:
                name += "_"
            view.set_array(name, new_bias)
            if len(conv.input) < 3:
                conv.input.append(name)
            conv.input[2] = name
        reader = readers[0]
        conv.output[0] = reader.output[0]
        view.graph.node.remove(reader)
        view.reindex()
        folded += 1
    return folded


PASSES = (fold_constants, remove_identities, cancel_transposes, fold_conv_affine)


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a checked copy of ``model`` with every pass applied until nothing changes."""
    view = Graph(copy_model(model))
    while sum(run(view) for run in PASSES):
        pass
    view.remove_unused()
    onnx.checker.check_model(view.model)
    return view.model


FP16_MIN_ELEMENTS = 64  # smaller tensors are not worth a Cast node


def store_weights_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy storing float32 weights as float16, each cast back to float32 on load.

    The arithmetic stays float32 (onnxruntime folds the casts into float32 constants when it
    loads the model), so only the weights are rounded — as ncnn's fp16 storage rounds them —
    and the file is about half the size.
    """
    copy = copy_model(model)
    graph = copy.graph
    casts = []
    for tensor in graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT or np.prod(tensor.dims) < FP16_MIN_ELEMENTS:
            continue
        name = tensor.name
        half = onnx.numpy_helper.to_array(tensor).astype(np.float16)
        tensor.CopyFrom(onnx.numpy_helper.from_array(half, f"{name}.fp16"))
        casts.append(
            onnx.helper.make_node(
                "Cast", [f"{name}.fp16"], [name], to=onnx.TensorProto.FLOAT, name=f"{name}.cast"
            )
        )
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(copy)
    return copy


def prelu_as_relu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy computing every per-channel ``PRelu(x, a)`` as ``Relu(x) - a * Relu(-x)``.

    Equal for every slope (``Max(x, a * x)`` is not: SFace has slopes below 0 and above 1).
    onnxruntime runs PRelu with a broadcast slope through a slow generic kernel: SFace spends
    half its time there, and the three cheap element-wise ops take 0.65x of that. For
    onnxruntime files only; ncnn's PReLU layer is fast.
    """
    copy = copy_model(model)
    nodes = []
    for node in copy.graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        x, slope, out = node.input[0], node.input[1], node.output[0]
        name = node.name or out
        make = onnx.helper.make_node
        nodes += [
            make("Relu", [x], [f"{out}.pos"], name=f"{name}.pos"),
            make("Neg", [x], [f"{out}.neg_in"], name=f"{name}.neg_in"),
            make("Relu", [f"{out}.neg_in"], [f"{out}.neg"], name=f"{name}.neg"),
            make("Mul", [f"{out}.neg", slope], [f"{out}.scaled"], name=f"{name}.scaled"),
            make("Sub", [f"{out}.pos", f"{out}.scaled"], [out], name=name),
        ]
    del copy.graph.node[:]
    copy.graph.node.extend(nodes)
    onnx.checker.check_model(copy)
    return copy

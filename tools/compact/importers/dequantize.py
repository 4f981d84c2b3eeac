"""Fold weight-only ``DequantizeLinear`` nodes (ONNX opset 21 block quantization) into fp32.

OpenCV Zoo ships its models with int8 weights that a ``DequantizeLinear`` (per tensor, per
axis or per block) turns back into float at run time, often followed by a ``Reshape`` of the
result. pnnx converts none of them and onnxruntime refuses some (a one-element scale that
carries a ``block_size``), so the importers compute them once, exactly as ONNX defines them:
``(q - zero_point) * scale``, each scale repeated ``block_size`` times along ``axis``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize(
    quantized: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    """Return ``DequantizeLinear`` of constant inputs as float32 (per tensor, axis or block)."""
    zero = np.zeros_like(scale, dtype=np.int32) if zero_point is None else zero_point
    scale, zero = scale.astype(np.float32), zero.astype(np.int32)
    if scale.size == 1:
        scale, zero = scale.reshape(()), zero.reshape(())
    elif block_size:
        axis %= quantized.ndim
        cut = tuple(slice(0, size) for size in quantized.shape)
        scale = np.repeat(scale, block_size, axis=axis)[cut]
        zero = np.repeat(zero, block_size, axis=axis)[cut]
    else:
        axis %= quantized.ndim
        shape = [1] * quantized.ndim
        shape[axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    difference = (quantized.astype(np.int32) - zero).astype(np.float32)
    return np.asarray(difference * scale, dtype=np.float32)


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """Return a node's attributes by name."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def fold_weight_dequantize(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Remove every ``DequantizeLinear`` of constants (and ``Reshape`` of its result).

    Returns the float32 values they made, by output name; the caller adds the ones still read
    as initializers. Nodes that dequantize run-time values stay.
    """
    known = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            known[node.output[0]] = numpy_helper.to_array(attributes(node)["value"])
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in model.graph.node:
        constant = all(name in known for name in node.input if name)
        if node.op_type == "DequantizeLinear" and constant:
            attrs = attributes(node)
            zero = known[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            value = dequantize(
                known[node.input[0]],
                known[node.input[1]],
                zero,
                attrs.get("axis", 1),
                attrs.get("block_size", 0),
            )
        elif node.op_type == "Reshape" and node.input[0] in folded and constant:
            value = folded[node.input[0]].reshape(known[node.input[1]])
        else:
            kept.append(node)
            continue
        known[node.output[0]] = folded[node.output[0]] = value
    del model.graph.node[:]
    model.graph.node.extend(kept)
    return folded

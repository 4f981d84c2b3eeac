"""Import YuNet (OpenCV Zoo's ``face_detection_yunet_2023mar_int8bq.onnx``) as fp32 ONNX.

The source stores its weights as int8 with ``DequantizeLinear`` nodes (block quantization,
opset 21). onnxruntime refuses one kind of them (a one-element scale that carries a
``block_size``) and pnnx converts none, so every weight-only ``DequantizeLinear`` (and a
``Reshape`` of such a weight) is folded into a float32 initializer, computed exactly as
ONNX defines it: ``(q - zero_point) * scale``, each scale repeated ``block_size`` times
along ``axis``. The arithmetic that remains is the float graph the weights were quantized
from.

The graph declares a fixed 1x3x640x640 input, but every ``Reshape`` of its heads uses -1, so
height and width become symbolic: any multiple of 32 runs (the engine pads the frame).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tools.compact.errors import ToolError

INPUT = "input"
STRIDES = (8, 16, 32)
OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES)


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


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fold(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Remove the weight-only dequantization nodes; return the float weights they made."""
    known = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            known[node.output[0]] = numpy_helper.to_array(_attributes(node)["value"])
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in model.graph.node:
        constant = all(name in known for name in node.input if name)
        if node.op_type == "DequantizeLinear" and constant:
            attrs = _attributes(node)
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


def import_yunet(path: Path) -> onnx.ModelProto:
    """Return the fp32 YuNet graph with a 1x3xHxW input (H, W multiples of 32)."""
    try:
        model = onnx.load(path)
    except Exception as err:  # protobuf raises DecodeError, onnx its own types
        raise ToolError(f"{path.name}: not an ONNX model ({err})") from err
    inputs = [value.name for value in model.graph.input]
    outputs = tuple(value.name for value in model.graph.output)
    if inputs != [INPUT] or sorted(outputs) != sorted(OUTPUTS):
        raise ToolError(f"{path.name}: not YuNet (inputs {inputs}, outputs {list(outputs)})")
    folded = _fold(model)
    if any(node.op_type == "DequantizeLinear" for node in model.graph.node):
        raise ToolError(f"{path.name}: dequantizes a value that is not a constant weight")
    used = {name for node in model.graph.node for name in node.input}
    initializers = [init for init in model.graph.initializer if init.name in used]
    initializers += [
        numpy_helper.from_array(value, name) for name, value in folded.items() if name in used
    ]
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = f"{output.name}_cells"
    del model.graph.value_info[:]
    model.graph.name = "yunet"
    model.producer_name, model.producer_version = "compact-ai", ""
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ToolError(f"{path.name}: the folded graph is not valid ONNX: {err}") from err
    return model

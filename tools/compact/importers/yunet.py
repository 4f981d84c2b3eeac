"""Import YuNet (OpenCV Zoo's ``face_detection_yunet_2023mar_int8bq.onnx``) as fp32 ONNX.

The source stores its weights as int8 with ``DequantizeLinear`` nodes (block quantization,
opset 21). onnxruntime refuses one kind of them (a one-element scale that carries a
``block_size``) and pnnx converts none, so every weight-only ``DequantizeLinear`` (and a
``Reshape`` of such a weight) is folded into a float32 initializer, computed exactly as
ONNX defines it (:mod:`.dequantize`). The arithmetic that remains is the float graph the
weights were quantized from.

The graph declares a fixed 1x3x640x640 input, but every ``Reshape`` of its heads uses -1, so
height and width become symbolic: any multiple of 32 runs (the engine pads the frame).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import numpy_helper

from tools.compact.errors import ToolError
from tools.compact.importers.dequantize import fold_weight_dequantize

INPUT = "input"
STRIDES = (8, 16, 32)
OUTPUTS = tuple(f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES)


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
    folded = fold_weight_dequantize(model)
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

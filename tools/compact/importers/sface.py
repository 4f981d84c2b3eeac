"""Import SFace (OpenCV Zoo's ``face_recognition_sface_2021dec_int8bq.onnx``) as fp32 ONNX.

The source stores its weights as int8 behind ``DequantizeLinear`` nodes (blocks of 64, 9, 32
and 27 values, opset 21), each conv weight reshaped after it. It also declares 29 float graph
inputs no node reads (old weight names) next to its initializers: onnxruntime refuses to run
it unless they are fed, and they stop constant folding. The importer folds the dequantization
into fp32 initializers (:mod:`.dequantize`), keeps only the pixel input, and drops the
inference-time no-op ``Dropout``. What remains computes exactly what the source computes:
Sub, Mul, 27 Conv + BatchNormalization + PRelu, Flatten, Gemm and a last BatchNormalization.

Input ``chip``: float32 [N, 3, 112, 112] **RGB** in 0..255 (the graph subtracts 127.5 and
scales by 1/128), a face aligned to the ArcFace 5-point template. Output ``embedding``:
float32 [N, 128], compared by cosine similarity (the engine L2-normalizes it).

The scalar 127.5 becomes a per-channel [1, 3, 1, 1] constant: pnnx turns a scalar ``Sub`` on
the graph input into an in-place ncnn layer on the input blob, which writes into the caller's
memory; a per-channel constant gives a two-input layer that does not (same arithmetic).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tools.compact.errors import ToolError
from tools.compact.importers.dequantize import fold_weight_dequantize
from tools.compact.pack.sources import SFACE_SHA256

OPSET = 17  # every op left has the same meaning in 17 and 21
IR_VERSION = 8
CHIP_SIZE = 112
SOURCE_INPUT, SOURCE_OUTPUT = "data", "fc1"
INPUT, OUTPUT = "chip", "embedding"
MEAN_NAME = "scalar_op1"


def _load(path: Path) -> onnx.ModelProto:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ToolError(f"{path}: cannot read: {err}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != SFACE_SHA256:
        raise ToolError(
            f"{path.name}: sha256 {digest} is not SFace's {SFACE_SHA256} (wrong or damaged file)"
        )
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf raises DecodeError, onnx its own types
        raise ToolError(f"{path.name}: not an ONNX model ({err})") from err
    return model


def _without_dropout(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Drop ``Dropout`` (a no-op at inference) and the Constants only it read."""
    rename = {node.output[0]: node.input[0] for node in nodes if node.op_type == "Dropout"}
    kept = [node for node in nodes if node.op_type != "Dropout"]
    for node in kept:
        for index, name in enumerate(node.input):
            node.input[index] = rename.get(name, name)
    read = {name for node in kept for name in node.input}
    return [n for n in kept if not (n.op_type == "Constant" and n.output[0] not in read)]


def import_sface(path: Path) -> onnx.ModelProto:
    """Return the fp32 SFace graph with input ``chip`` [N, 3, 112, 112] and output ``embedding``."""
    path = Path(path)
    model = _load(path)
    folded = fold_weight_dequantize(model)
    nodes = _without_dropout(list(model.graph.node))
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    arrays.update(folded)
    arrays[MEAN_NAME] = np.full((1, 3, 1, 1), float(arrays[MEAN_NAME].reshape(())), np.float32)
    rename = {SOURCE_INPUT: INPUT, SOURCE_OUTPUT: OUTPUT}
    for node in nodes:
        node.input[:] = [rename.get(name, name) for name in node.input]
        node.output[:] = [rename.get(name, name) for name in node.output]
    read = {name for node in nodes for name in node.input}
    made = {name for node in nodes for name in node.output}
    initializers = [
        numpy_helper.from_array(np.asarray(arrays[name]), name)
        for name in sorted(read - made - {INPUT})
    ]
    chip = helper.make_tensor_value_info(
        INPUT, TensorProto.FLOAT, ["batch", 3, CHIP_SIZE, CHIP_SIZE]
    )
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 128])
    graph = helper.make_graph(nodes, "sface_2021dec", [chip], [out], initializers)
    result = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="compact-ai"
    )
    result.ir_version = IR_VERSION
    result.doc_string = "OpenCV Zoo SFace (Apache-2.0) on RGB 0..255 ArcFace-aligned 112 px chips"
    try:
        onnx.checker.check_model(result, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ToolError(f"{path.name}: the folded graph is not valid ONNX: {err}") from err
    return result

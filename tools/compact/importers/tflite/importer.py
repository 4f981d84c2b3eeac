"""Assemble the ONNX model of a TFLite graph: inputs, every operator, outputs; then check it."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx
import tflite
from onnx import TensorProto, helper

from tools.compact.errors import ToolError
from tools.compact.importers.tflite.converter import Converter, identity
from tools.compact.importers.tflite.ops import CONVERTERS
from tools.compact.importers.tflite.reader import OperatorInfo, TensorInfo, TfliteGraph, read_tflite

OPSET = 17
IR_VERSION = helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])


def _value_info(
    name: str, tensor: TensorInfo, dim_names: Sequence[str | None]
) -> onnx.ValueInfoProto:
    """Describe a graph input/output; dynamic dimensions get ``dim_names`` (None: unnamed)."""
    if tensor.type_code not in (tflite.TensorType.FLOAT32, tflite.TensorType.INT32):
        raise ToolError(f"graph input/output {tensor.name} has unsupported type {tensor.type_name}")
    elem = TensorProto.FLOAT if tensor.type_code == tflite.TensorType.FLOAT32 else TensorProto.INT32
    dims: list[int | str | None] = [
        dim if dim >= 0 else dim_names[axis] for axis, dim in enumerate(tensor.signature)
    ]
    return helper.make_tensor_value_info(name, elem, dims)


def _input_dim_names(tensor: TensorInfo) -> list[str | None]:
    return ["batch" if axis == 0 else f"d{axis}" for axis in range(len(tensor.signature))]


def _convert_ops(
    converter: Converter, table: dict[str, Callable[[Converter, OperatorInfo], None]]
) -> None:
    graph = converter.graph
    for op in graph.operators:
        converter.op_index = op.index
        handler = table.get(op.name)
        if handler is None:
            raise ToolError(
                f"{graph.path}: unsupported TFLite op {op.name} (operator index {op.index})"
            )
        try:
            handler(converter, op)
        except (struct.error, IndexError, UnicodeDecodeError) as err:
            raise converter.error(f"corrupt operator data ({err})") from err
    converter.op_index = -1


def _graph_outputs(converter: Converter) -> list[onnx.ValueInfoProto]:
    """Bring every graph output to the TFLite layout under its TFLite name."""
    outputs = []
    for index in converter.graph.outputs:
        tensor = converter.tensor(index)
        wanted = converter.tensor_name(index)
        name = converter.value(index, identity(len(tensor.signature)))
        if name != wanted:
            converter.node("Identity", [name], wanted)
        outputs.append(_value_info(wanted, tensor, [None] * len(tensor.signature)))
    return outputs


def convert(graph: TfliteGraph) -> onnx.ModelProto:
    """Convert a read TFLite graph to an ONNX model (opset 17)."""
    converter = Converter(graph)
    inputs = []
    for index in graph.inputs:
        tensor = converter.tensor(index)
        name = converter.output_name(index, identity(len(tensor.signature)))
        converter.set_value(index, name, identity(len(tensor.signature)))
        inputs.append(_value_info(name, tensor, _input_dim_names(tensor)))
    _convert_ops(converter, CONVERTERS)
    outputs = _graph_outputs(converter)
    onnx_graph = helper.make_graph(
        converter.nodes,
        graph.path.stem,
        inputs,
        outputs,
        initializer=list(converter.initializers.values()),
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="compact-ai",
        doc_string=f"converted from {graph.path.name}",
    )
    model.ir_version = IR_VERSION
    return model


def import_tflite(path: Path) -> onnx.ModelProto:
    """Read a float TFLite model and return an equivalent, checked ONNX model."""
    model = convert(read_tflite(Path(path)))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        raise ToolError(f"{path}: the converted ONNX model is invalid: {err}") from err
    return model

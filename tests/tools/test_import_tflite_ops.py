"""The TFLite importer operator by operator: hand-built one-op models against LiteRT."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
import onnx
import pytest
import tflite

from tests.tools.tflite_reference import assert_matches
from tools.compact.errors import ToolError
from tools.compact.importers.tflite import import_tflite


@dataclass(frozen=True)
class TinyOp:
    """One op of a hand-built model: it reads the previous output and its constants."""

    code: int
    constants: list[np.ndarray]
    output_shape: list[int]
    options: tuple[int, Callable[[flatbuffers.Builder], int]] | None = None
    output_signature: list[int] | None = None  # -1 marks a dynamic dimension


def _vector(builder: flatbuffers.Builder, values: list[int]) -> int:
    return builder.CreateNumpyVector(np.asarray(values, dtype=np.int32))


def _offsets(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


def _buffer(builder: flatbuffers.Builder, data: np.ndarray | None) -> int:
    payload = 0
    if data is not None:
        raw = np.ascontiguousarray(data).view(np.uint8).ravel()
        builder.StartVector(1, raw.size, 16)
        for byte in raw[::-1]:
            builder.PrependUint8(int(byte))
        payload = builder.EndVector()
    tflite.BufferStart(builder)
    if payload:
        tflite.BufferAddData(builder, payload)
    return tflite.BufferEnd(builder)


def _tensor(
    builder: flatbuffers.Builder, index: int, shape: list[int], signature: list[int], kind: type
) -> int:
    name, shape_vector = builder.CreateString(f"t{index}"), _vector(builder, shape)
    signature_vector = _vector(builder, signature)
    tflite.TensorStart(builder)
    tflite.TensorAddShape(builder, shape_vector)
    tflite.TensorAddShapeSignature(builder, signature_vector)
    tflite.TensorAddType(
        builder, tflite.TensorType.INT32 if kind is np.int32 else tflite.TensorType.FLOAT32
    )
    tflite.TensorAddBuffer(builder, index + 1)
    tflite.TensorAddName(builder, name)
    return tflite.TensorEnd(builder)


def _operator(
    builder: flatbuffers.Builder, op: TinyOp, opcode: int, inputs: list[int], output: int
) -> int:
    option_table = op.options[1](builder) if op.options else 0
    input_vector, output_vector = _vector(builder, inputs), _vector(builder, [output])
    tflite.OperatorStart(builder)
    tflite.OperatorAddOpcodeIndex(builder, opcode)
    tflite.OperatorAddInputs(builder, input_vector)
    tflite.OperatorAddOutputs(builder, output_vector)
    if op.options:
        tflite.OperatorAddBuiltinOptionsType(builder, op.options[0])
        tflite.OperatorAddBuiltinOptions(builder, option_table)
    return tflite.OperatorEnd(builder)


def _opcode(builder: flatbuffers.Builder, code: int) -> int:
    tflite.OperatorCodeStart(builder)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(builder, min(code, 127))
    tflite.OperatorCodeAddBuiltinCode(builder, code)
    tflite.OperatorCodeAddVersion(builder, 1)
    return tflite.OperatorCodeEnd(builder)


_Spec = tuple[list[int], list[int], type, np.ndarray | None]  # shape, signature, type, data


def _tiny_model(
    input_shape: list[int], ops: list[TinyOp], input_signature: list[int] | None = None
) -> bytes:
    """Build a float TFLite model running ``ops`` one after the other."""
    builder = flatbuffers.Builder(1024)
    tensors: list[_Spec] = [(input_shape, input_signature or input_shape, np.float32, None)]
    wiring: list[tuple[list[int], int]] = []
    for op in ops:
        inputs = [len(tensors) - 1]
        for constant in op.constants:
            inputs.append(len(tensors))
            shape = list(constant.shape)
            tensors.append((shape, shape, constant.dtype.type, constant))
        wiring.append((inputs, len(tensors)))
        signature = op.output_signature or op.output_shape
        tensors.append((op.output_shape, signature, np.float32, None))
    buffers = [_buffer(builder, None)] + [_buffer(builder, spec[3]) for spec in tensors]
    tensor_offsets = [
        _tensor(builder, i, shape, signature, kind)
        for i, (shape, signature, kind, _) in enumerate(tensors)
    ]
    codes = sorted({op.code for op in ops})
    operators = [
        _operator(builder, op, codes.index(op.code), inputs, output)
        for op, (inputs, output) in zip(ops, wiring, strict=True)
    ]
    tensor_vector, operator_vector = _offsets(builder, tensor_offsets), _offsets(builder, operators)
    graph_inputs, graph_outputs = _vector(builder, [0]), _vector(builder, [len(tensors) - 1])
    tflite.SubGraphStart(builder)
    tflite.SubGraphAddTensors(builder, tensor_vector)
    tflite.SubGraphAddInputs(builder, graph_inputs)
    tflite.SubGraphAddOutputs(builder, graph_outputs)
    tflite.SubGraphAddOperators(builder, operator_vector)
    subgraph = _offsets(builder, [tflite.SubGraphEnd(builder)])
    code_vector = _offsets(builder, [_opcode(builder, code) for code in codes])
    buffer_vector = _offsets(builder, buffers)
    tflite.ModelStart(builder)
    tflite.ModelAddVersion(builder, 3)
    tflite.ModelAddOperatorCodes(builder, code_vector)
    tflite.ModelAddSubgraphs(builder, subgraph)
    tflite.ModelAddBuffers(builder, buffer_vector)
    builder.Finish(tflite.ModelEnd(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check_tiny(tmp_path: Path, content: bytes, input_shape: list[int]) -> onnx.ModelProto:
    path = tmp_path / "tiny.tflite"
    path.write_bytes(content)
    model = import_tflite(path)
    onnx.checker.check_model(model, full_check=True)
    data = np.random.default_rng(3).normal(0, 4, input_shape).astype(np.float32)
    assert_matches(path, model, data)
    return model


def _conv_options(activation: str, stride_h: int, stride_w: int) -> Any:
    def build(builder: flatbuffers.Builder) -> int:
        tflite.Conv2DOptionsStart(builder)
        tflite.Conv2DOptionsAddPadding(builder, tflite.Padding.SAME)
        tflite.Conv2DOptionsAddStrideW(builder, stride_w)
        tflite.Conv2DOptionsAddStrideH(builder, stride_h)
        tflite.Conv2DOptionsAddDilationWFactor(builder, 1)
        tflite.Conv2DOptionsAddDilationHFactor(builder, 1)
        code = getattr(tflite.ActivationFunctionType, activation)
        tflite.Conv2DOptionsAddFusedActivationFunction(builder, code)
        return tflite.Conv2DOptionsEnd(builder)

    return (tflite.BuiltinOptions.Conv2DOptions, build)


def _conv_model(activation: str) -> bytes:
    rng = np.random.default_rng(4)
    weights = rng.normal(0, 0.3, (4, 4, 3, 2)).astype(np.float32)  # even kernel: uneven pads
    bias = rng.normal(0, 0.3, 4).astype(np.float32)
    conv = TinyOp(
        tflite.BuiltinOperator.CONV_2D,
        [weights, bias],
        [1, 4, 4, 4],
        _conv_options(activation, 3, 2),
    )
    return _tiny_model([1, 11, 8, 2], [conv])


@pytest.mark.parametrize(
    ("align_corners", "half_pixel", "mode"),
    [(False, False, "asymmetric"), (True, False, "align_corners"), (False, True, "half_pixel")],
)
def test_resize_bilinear_coordinate_modes(
    tmp_path: Path, align_corners: bool, half_pixel: bool, mode: str
) -> None:
    def options(builder: flatbuffers.Builder) -> int:
        tflite.ResizeBilinearOptionsStart(builder)
        tflite.ResizeBilinearOptionsAddAlignCorners(builder, align_corners)
        tflite.ResizeBilinearOptionsAddHalfPixelCenters(builder, half_pixel)
        return tflite.ResizeBilinearOptionsEnd(builder)

    resize = TinyOp(
        tflite.BuiltinOperator.RESIZE_BILINEAR,
        [np.array([9, 4], np.int32)],
        [1, 9, 4, 3],
        (tflite.BuiltinOptions.ResizeBilinearOptions, options),
    )
    model = _check_tiny(tmp_path, _tiny_model([1, 5, 7, 3], [resize]), [1, 5, 7, 3])
    (node,) = [node for node in model.graph.node if node.op_type == "Resize"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attributes["coordinate_transformation_mode"].decode() == mode


@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
def test_conv_same_padding_stride_and_fused_activation(tmp_path: Path, activation: str) -> None:
    _check_tiny(tmp_path, _conv_model(activation), [1, 11, 8, 2])


def test_conv_same_padding_with_dynamic_spatial_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    weights = rng.normal(0, 0.3, (3, 3, 4, 2)).astype(np.float32)
    conv = TinyOp(
        tflite.BuiltinOperator.CONV_2D,
        [weights, np.zeros(3, np.float32)],
        [1, 4, 4, 3],
        _conv_options("RELU6", 2, 3),
        output_signature=[-1, -1, -1, 3],
    )
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(_tiny_model([1, 8, 12, 2], [conv], input_signature=[-1, -1, -1, 2]))
    model = import_tflite(path)
    onnx.checker.check_model(model, full_check=True)
    for shape in ([1, 8, 12, 2], [2, 9, 13, 2], [1, 5, 4, 2]):
        data = rng.normal(0, 2, shape).astype(np.float32)
        assert_matches(path, model, data)


def test_fused_tanh_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tanh_conv.tflite"
    path.write_bytes(_conv_model("TANH"))
    with pytest.raises(ToolError, match=r"tanh_conv\.tflite.*operator 0.*TANH"):
        import_tflite(path)


def test_fully_connected(tmp_path: Path) -> None:
    def options(builder: flatbuffers.Builder) -> int:
        tflite.FullyConnectedOptionsStart(builder)
        tflite.FullyConnectedOptionsAddFusedActivationFunction(
            builder, tflite.ActivationFunctionType.RELU
        )
        return tflite.FullyConnectedOptionsEnd(builder)

    rng = np.random.default_rng(5)
    weights = rng.normal(0, 0.5, (5, 4)).astype(np.float32)
    bias = rng.normal(0, 0.5, 5).astype(np.float32)
    dense = TinyOp(
        tflite.BuiltinOperator.FULLY_CONNECTED,
        [weights, bias],
        [6, 5],
        (tflite.BuiltinOptions.FullyConnectedOptions, options),
    )
    _check_tiny(tmp_path, _tiny_model([2, 3, 4], [dense]), [2, 3, 4])


def test_nchw_chain_with_prelu_channel_constant_and_flatten(tmp_path: Path) -> None:
    """Conv -> PRELU -> MUL by a per-channel constant -> MAX_POOL (SAME, odd) -> RESHAPE."""

    def pool(builder: flatbuffers.Builder) -> int:
        tflite.Pool2DOptionsStart(builder)
        tflite.Pool2DOptionsAddPadding(builder, tflite.Padding.SAME)
        tflite.Pool2DOptionsAddStrideW(builder, 2)
        tflite.Pool2DOptionsAddStrideH(builder, 2)
        tflite.Pool2DOptionsAddFilterWidth(builder, 2)
        tflite.Pool2DOptionsAddFilterHeight(builder, 2)
        return tflite.Pool2DOptionsEnd(builder)

    rng = np.random.default_rng(6)
    ops = [
        TinyOp(
            tflite.BuiltinOperator.CONV_2D,
            [rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), np.zeros(4, np.float32)],
            [1, 7, 9, 4],
            _conv_options("NONE", 1, 1),
        ),
        TinyOp(
            tflite.BuiltinOperator.PRELU,
            [rng.uniform(0, 0.5, (1, 1, 4)).astype(np.float32)],
            [1, 7, 9, 4],
        ),
        TinyOp(
            tflite.BuiltinOperator.MUL,
            [np.array([1.0, -2.0, 0.5, 3.0], np.float32)],
            [1, 7, 9, 4],
        ),
        TinyOp(
            tflite.BuiltinOperator.MAX_POOL_2D,
            [],
            [1, 4, 5, 4],
            (tflite.BuiltinOptions.Pool2DOptions, pool),
        ),
        TinyOp(tflite.BuiltinOperator.RESHAPE, [np.array([1, -1], np.int32)], [1, 80]),
    ]
    model = _check_tiny(tmp_path, _tiny_model([1, 7, 9, 3], ops), [1, 7, 9, 3])
    assert Counter(node.op_type for node in model.graph.node)["Transpose"] == 2


def test_unsupported_op_in_a_real_file(tmp_path: Path) -> None:
    content = _tiny_model([1, 4], [TinyOp(tflite.BuiltinOperator.TANH, [], [1, 4])])
    path = tmp_path / "tanh.tflite"
    path.write_bytes(content)
    with pytest.raises(ToolError, match=r"tanh\.tflite.*TANH.*operator index 0"):
        import_tflite(path)

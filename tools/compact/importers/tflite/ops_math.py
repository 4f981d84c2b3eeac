"""Converters of TFLite ops that compute: constants, elementwise, reductions, matrix products."""

from __future__ import annotations

import numpy as np
import tflite
from onnx import TensorProto

from tools.compact.importers.tflite.converter import Converter, Perm, identity, inverse
from tools.compact.importers.tflite.ops_base import (
    NONE,
    OpConverter,
    elementwise_layout,
    fused_activation,
    positive_axis,
    squeezed_perm,
)
from tools.compact.importers.tflite.reader import OperatorInfo, Quantization


def dequantize(ctx: Converter, op: OperatorInfo) -> None:
    """Fold a constant DEQUANTIZE at import time; a runtime fp16 input becomes a Cast."""
    source, target = op.inputs[0], op.outputs[0]
    constant = ctx.const(source)
    tensor = ctx.tensor(source)
    if constant is not None:
        ctx.fold(target, _dequantized(ctx, constant, tensor.quantization))
    elif tensor.type_code == tflite.TensorType.FLOAT16:
        ctx.emit("Cast", [ctx.value(source)], target, ctx.perm(source), to=TensorProto.FLOAT)
    else:
        raise ctx.error(f"DEQUANTIZE of a runtime {tensor.type_name} tensor is not supported")


def _dequantized(ctx: Converter, constant: np.ndarray, quant: Quantization | None) -> np.ndarray:
    """Return a constant as float32: fp16 widened, int8/uint8 affinely dequantized."""
    if constant.dtype.kind == "f":
        return constant.astype(np.float32)
    if quant is None:
        raise ctx.error("DEQUANTIZE of an integer tensor without quantization parameters")
    scale, zero = quant.scale.astype(np.float32), quant.zero_point
    if scale.size > 1:
        shape = [1] * constant.ndim
        shape[quant.axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    result: np.ndarray = ((constant.astype(np.int64) - zero) * scale).astype(np.float32)
    return result


def densify(ctx: Converter, op: OperatorInfo) -> None:
    """Fold DENSIFY: the reader already expanded the sparse constant."""
    constant = ctx.const(op.inputs[0])  # sparse tensors are densified when the file is read
    if constant is None:
        raise ctx.error("DENSIFY of a runtime tensor is not supported")
    ctx.fold(op.outputs[0], constant)


def binary(op_type: str, fused: bool) -> OpConverter:
    """Return a converter for a broadcasting binary op (optionally with fused activation)."""

    def convert(ctx: Converter, op: OperatorInfo) -> None:
        perm = elementwise_layout(ctx, op.inputs[:2])
        inputs = [ctx.broadcast(index, perm) for index in op.inputs[:2]]
        activation = fused_activation(op.options) if fused else NONE
        ctx.emit_activated(op_type, inputs, op.outputs[0], perm, activation)

    return convert


def unary(op_type: str, **attrs: object) -> OpConverter:
    """Return a converter for a layout-free unary op."""

    def convert(ctx: Converter, op: OperatorInfo) -> None:
        source = op.inputs[0]
        ctx.emit(op_type, [ctx.value(source)], op.outputs[0], ctx.perm(source), **attrs)

    return convert


def leaky_relu(ctx: Converter, op: OperatorInfo) -> None:
    """Convert LEAKY_RELU (alpha 0 when the options are missing, as in the schema)."""
    source = op.inputs[0]
    alpha = float(op.options.Alpha()) if op.options is not None else 0.0  # schema default
    ctx.emit("LeakyRelu", [ctx.value(source)], op.outputs[0], ctx.perm(source), alpha=alpha)


def prelu(ctx: Converter, op: OperatorInfo) -> None:
    """Convert PRELU, with alpha broadcast to the input's layout."""
    perm = ctx.perm(op.inputs[0])
    inputs = [ctx.value(op.inputs[0]), ctx.broadcast(op.inputs[1], perm)]
    ctx.emit("PRelu", inputs, op.outputs[0], perm)


def reduce_max(ctx: Converter, op: OperatorInfo) -> None:
    """Convert REDUCE_MAX over constant axes in the input's layout."""
    source, target = op.inputs[0], op.outputs[0]
    rank = ctx.rank(source)
    dims = sorted(
        {positive_axis(int(a), rank) for a in ctx.require_const(op.inputs[1], "axes").ravel()}
    )
    keep = bool(op.options.KeepDims()) if op.options is not None else False
    perm = ctx.perm(source)
    if not dims:
        ctx.emit("Identity", [ctx.value(source)], target, perm)
        return
    axes = sorted(inverse(perm)[d] for d in dims)
    new_perm = perm if keep else squeezed_perm(perm, dims)
    ctx.emit("ReduceMax", [ctx.value(source)], target, new_perm, axes=axes, keepdims=int(keep))


def _swap_last(rank: int) -> Perm:
    return (*range(rank - 2), rank - 1, rank - 2)


def batch_matmul(ctx: Converter, op: OperatorInfo) -> None:
    """Convert BATCH_MATMUL; with a constant right side, compute (A@B)^T = B^T @ A^T if free."""
    left, right, target = op.inputs[0], op.inputs[1], op.outputs[0]
    adj_x = bool(op.options.AdjX()) if op.options is not None else False
    adj_y = bool(op.options.AdjY()) if op.options is not None else False
    rank_a, rank_out = ctx.rank(left), ctx.rank(target)
    weights = ctx.const(right)
    stored = ctx.perm(left)
    # free when the stored left operand already is A'^T (A' = A^T if adj_x else A)
    free = stored == (identity(rank_a) if adj_x else _swap_last(rank_a))
    if weights is not None and free:
        b_eff = np.swapaxes(weights, -1, -2) if adj_y else weights
        b_t = np.swapaxes(b_eff, -1, -2).astype(np.float32)
        b_name = ctx.initializer(b_t, f"{ctx.tensor_name(right)}__t")
        ctx.emit("MatMul", [b_name, ctx.value(left)], target, _swap_last(rank_out))
        return
    a_name = ctx.value(left, _swap_last(rank_a) if adj_x else identity(rank_a))
    rank_b = ctx.rank(right)
    b_name = ctx.value(right, _swap_last(rank_b) if adj_y else identity(rank_b))
    ctx.emit("MatMul", [a_name, b_name], target, identity(rank_out))


def fully_connected(ctx: Converter, op: OperatorInfo) -> None:
    """Convert FULLY_CONNECTED to a Gemm (a Reshape around it for other ranks)."""
    options = op.options
    if options is not None and options.WeightsFormat() != 0:
        raise ctx.error("FULLY_CONNECTED with shuffled weights is not supported")
    source, weights, target = op.inputs[0], op.inputs[1], op.outputs[0]
    depth = ctx.sig(weights)[1]
    data = ctx.value(source, identity(ctx.rank(source)))
    if ctx.rank(source) != 2:
        flat = ctx.int64s([-1, depth], f"{ctx.tensor_name(source)}__flat")
        data = ctx.node("Reshape", [data, flat], ctx.fresh(f"{data}__2d"))
    inputs = [data, ctx.value(weights)]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(ctx.value(op.inputs[2]))
    out_sig = ctx.sig(target)
    if len(out_sig) == 2:
        ctx.emit_activated("Gemm", inputs, target, (0, 1), fused_activation(options), transB=1)
        return
    flat_out = ctx.node("Gemm", inputs, ctx.fresh(f"{ctx.tensor_name(target)}__2d"), transB=1)
    if list(out_sig).count(-1) > 1:
        raise ctx.error("FULLY_CONNECTED keep_num_dims with several dynamic dimensions")
    shape = ctx.int64s(list(out_sig), f"{ctx.tensor_name(target)}__shape")
    ctx.emit_activated(
        "Reshape", [flat_out, shape], target, identity(len(out_sig)), fused_activation(options)
    )

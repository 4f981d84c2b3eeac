"""Converters of TFLite ops that move data between shapes and layouts."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from tools.compact.importers.tflite.converter import Converter, identity, inverse
from tools.compact.importers.tflite.ops_base import (
    elementwise_layout,
    fused_activation,
    positive_axis,
    squeezed_perm,
)
from tools.compact.importers.tflite.reader import OperatorInfo


def pad(ctx: Converter, op: OperatorInfo) -> None:
    """Convert PAD with constant paddings (folded when the input is constant)."""
    source = op.inputs[0]
    pads = ctx.require_const(op.inputs[1], "PAD paddings").astype(np.int64)
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(op.outputs[0], np.pad(constant, pads.tolist()))
        return
    perm = ctx.perm(source)
    onnx_pads = [int(pads[axis, 0]) for axis in perm] + [int(pads[axis, 1]) for axis in perm]
    pads_name = ctx.int64s(onnx_pads, f"{ctx.tensor_name(op.inputs[1])}__onnx")
    ctx.emit("Pad", [ctx.value(source), pads_name], op.outputs[0], perm, mode="constant")


def reshape(ctx: Converter, op: OperatorInfo) -> None:
    """Convert RESHAPE in the TFLite layout (the shape from an input or the options)."""
    source, target = op.inputs[0], op.outputs[0]
    if len(op.inputs) > 1 and op.inputs[1] >= 0:
        shape = ctx.const(op.inputs[1])
    elif op.options is not None:
        shape = np.asarray(op.options.NewShapeAsNumpy())
    else:
        raise ctx.error("RESHAPE without a target shape")
    constant = ctx.const(source)
    if constant is not None and shape is not None:
        ctx.fold(target, constant.reshape(shape.astype(np.int64).tolist()))
        return
    data = ctx.value(source, identity(ctx.rank(source)))
    if shape is None:
        shape_name = ctx.node(
            "Cast", [ctx.value(op.inputs[1])], ctx.fresh(f"{data}__shape"), to=TensorProto.INT64
        )
    else:
        shape_name = ctx.int64s(
            shape.astype(np.int64).tolist(), f"{ctx.tensor_name(target)}__shape"
        )
    ctx.emit("Reshape", [data, shape_name], target, identity(ctx.rank(target)))


def expand_dims(ctx: Converter, op: OperatorInfo) -> None:
    """Convert EXPAND_DIMS to an Unsqueeze that keeps the input's layout."""
    source, target = op.inputs[0], op.outputs[0]
    axis = positive_axis(
        int(ctx.require_const(op.inputs[1], "EXPAND_DIMS axis").reshape(-1)[0]),
        ctx.rank(source) + 1,
    )
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(target, np.expand_dims(constant, axis))
        return
    perm = ctx.perm(source)
    position = sum(a < axis for a in perm)  # keeps an identity layout an identity
    shifted = [a + (a >= axis) for a in perm]
    new_perm = (*shifted[:position], axis, *shifted[position:])
    axes = ctx.int64s([position], f"{ctx.tensor_name(target)}__axes")
    ctx.emit("Unsqueeze", [ctx.value(source), axes], target, new_perm)


def squeeze(ctx: Converter, op: OperatorInfo) -> None:
    """Convert SQUEEZE (all size-1 axes when none are named) in the input's layout."""
    source, target = op.inputs[0], op.outputs[0]
    rank, sig = ctx.rank(source), ctx.sig(source)
    dims = [int(d) for d in op.options.SqueezeDimsAsNumpy()] if op.options is not None else []
    dims = sorted(positive_axis(d, rank) for d in dims) or [a for a in range(rank) if sig[a] == 1]
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(target, np.squeeze(constant, tuple(dims)))
        return
    perm = ctx.perm(source)
    positions = sorted(inverse(perm)[d] for d in dims)
    axes = ctx.int64s(positions, f"{ctx.tensor_name(target)}__axes")
    ctx.emit("Squeeze", [ctx.value(source), axes], target, squeezed_perm(perm, dims))


def transpose(ctx: Converter, op: OperatorInfo) -> None:
    """Re-label the layout: a TFLite TRANSPOSE costs no ONNX node until a consumer needs it."""
    source, target = op.inputs[0], op.outputs[0]
    raw = ctx.require_const(op.inputs[1], "TRANSPOSE perm").reshape(-1).tolist()
    order = tuple(positive_axis(int(a), len(raw)) for a in raw)
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(target, np.transpose(constant, order))
        return
    new_perm = tuple(inverse(order)[axis] for axis in ctx.perm(source))
    ctx.set_value(target, ctx.value(source), new_perm)


def concatenation(ctx: Converter, op: OperatorInfo) -> None:
    """Convert CONCATENATION in the layout of its first full-rank runtime input."""
    rank = ctx.rank(op.outputs[0])
    axis = positive_axis(op.options.Axis(), rank)
    perm = elementwise_layout(ctx, op.inputs)
    inputs = [ctx.value(index, perm) for index in op.inputs]
    ctx.emit_activated(
        "Concat",
        inputs,
        op.outputs[0],
        perm,
        fused_activation(op.options),
        axis=inverse(perm)[axis],
    )

"""Converters from TFLite builtin ops to ONNX nodes (used by :mod:`.tflite`).

Each converter reads its operator's inputs through the :class:`Converter`, which hands them
out in the layout the converter asks for, and records its outputs with their layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tflite
from onnx import TensorProto

from tools.compact.importers.tflite import NCHW, Perm, identity, inverse

if TYPE_CHECKING:
    from tools.compact.importers.tflite import Converter, OperatorInfo, Quantization

OpConverter = Callable[["Converter", "OperatorInfo"], None]

_NONE = tflite.ActivationFunctionType.NONE
_CONV_WEIGHTS: Perm = (0, 3, 1, 2)  # [O, kh, kw, I] -> [O, I, kh, kw]
_DEPTHWISE_WEIGHTS: Perm = (3, 0, 1, 2)  # [1, kh, kw, C*m] -> [C*m, 1, kh, kw]


# --------------------------------------------------------------------------- shared helpers


def _activation(options: Any) -> int:
    return int(options.FusedActivationFunction()) if options is not None else _NONE


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _spatial_attrs(
    ctx: Converter,
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    padding: int,
) -> dict[str, object]:
    """Return ONNX pads (or auto_pad) reproducing TFLite SAME/VALID padding."""
    if padding == tflite.Padding.VALID:
        return {"pads": [0, 0, 0, 0]}
    if padding != tflite.Padding.SAME:
        raise ctx.error(f"unknown padding mode {padding}")
    if any(size < 0 for size in in_hw):
        return {"auto_pad": "SAME_UPPER"}  # TF SAME puts the odd pixel at the end
    begins, ends = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations, strict=True):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return {"pads": begins + ends}


def _elementwise_layout(ctx: Converter, indices: Sequence[int]) -> Perm:
    """Pick the layout of a broadcasting op: that of its first full-rank runtime input."""
    rank = max(ctx.rank(index) for index in indices)
    for index in indices:
        if ctx.const(index) is None and ctx.rank(index) == rank:
            return ctx.perm(index)
    return identity(rank)


def _squeezed_perm(perm: Perm, removed: Sequence[int]) -> Perm:
    """Return the layout left after removing TFLite axes ``removed``."""
    return tuple(axis - sum(r < axis for r in removed) for axis in perm if axis not in removed)


# --------------------------------------------------------------------------- constants


def _dequantize(ctx: Converter, op: OperatorInfo) -> None:
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


def _densify(ctx: Converter, op: OperatorInfo) -> None:
    constant = ctx.const(op.inputs[0])  # sparse tensors are densified when the file is read
    if constant is None:
        raise ctx.error("DENSIFY of a runtime tensor is not supported")
    ctx.fold(op.outputs[0], constant)


# --------------------------------------------------------------------------- convolutions


def _convolution(ctx: Converter, op: OperatorInfo, depthwise: bool) -> None:
    """Convert CONV_2D / DEPTHWISE_CONV_2D to an NCHW ONNX Conv (grouped when needed)."""
    options = op.options
    data, weights = op.inputs[0], op.inputs[1]
    in_sig, w_sig = ctx.sig(data), ctx.sig(weights)
    if in_sig[3] < 0:
        raise ctx.error(f"{op.name} needs a static channel count")
    weight_perm = _DEPTHWISE_WEIGHTS if depthwise else _CONV_WEIGHTS
    inputs = [ctx.value(data, NCHW), ctx.value(weights, weight_perm)]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(ctx.value(op.inputs[2]))
    kernel = list(w_sig[1:3])
    strides = [options.StrideH(), options.StrideW()]
    dilations = [options.DilationHFactor(), options.DilationWFactor()]
    pads = _spatial_attrs(ctx, in_sig[1:3], kernel, strides, dilations, options.Padding())
    group = in_sig[3] if depthwise else in_sig[3] // w_sig[3]
    ctx.emit_activated(
        "Conv",
        inputs,
        op.outputs[0],
        NCHW,
        _activation(options),
        kernel_shape=kernel,
        strides=strides,
        dilations=dilations,
        group=group,
        **pads,
    )


def _conv_2d(ctx: Converter, op: OperatorInfo) -> None:
    _convolution(ctx, op, depthwise=False)


def _depthwise_conv_2d(ctx: Converter, op: OperatorInfo) -> None:
    _convolution(ctx, op, depthwise=True)


def _max_pool_2d(ctx: Converter, op: OperatorInfo) -> None:
    options = op.options
    kernel = [options.FilterHeight(), options.FilterWidth()]
    strides = [options.StrideH(), options.StrideW()]
    in_sig = ctx.sig(op.inputs[0])
    attrs = _spatial_attrs(ctx, in_sig[1:3], kernel, strides, [1, 1], options.Padding())
    ctx.emit_activated(
        "MaxPool",
        [ctx.value(op.inputs[0], NCHW)],
        op.outputs[0],
        NCHW,
        _activation(options),
        kernel_shape=kernel,
        strides=strides,
        **attrs,
    )


def _resize_bilinear(ctx: Converter, op: OperatorInfo) -> None:
    options = op.options
    size = ctx.require_const(op.inputs[1], "RESIZE_BILINEAR size").astype(np.int64).tolist()
    in_sig = ctx.sig(op.inputs[0])
    if options is not None and options.AlignCorners():
        mode = "align_corners"
    elif options is not None and options.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    data = ctx.value(op.inputs[0], NCHW)
    if in_sig[0] >= 0 and in_sig[3] >= 0:
        sizes = ctx.int64s([in_sig[0], in_sig[3], *size], f"{data}__sizes")
        inputs = [data, "", "", sizes]
    elif min(in_sig[1:3]) > 0:
        factors = [1.0, 1.0, size[0] / in_sig[1], size[1] / in_sig[2]]
        inputs = [data, "", ctx.initializer(np.array(factors, np.float32), f"{data}__scales")]
    else:
        raise ctx.error("RESIZE_BILINEAR needs static batch/channels or static height/width")
    ctx.emit(
        "Resize",
        inputs,
        op.outputs[0],
        NCHW,
        mode="linear",
        coordinate_transformation_mode=mode,
    )


def _depth_to_space(ctx: Converter, op: OperatorInfo) -> None:
    ctx.emit(
        "DepthToSpace",
        [ctx.value(op.inputs[0], NCHW)],
        op.outputs[0],
        NCHW,
        blocksize=op.options.BlockSize(),
        mode="DCR",  # DCR is TensorFlow's depth order
    )


# --------------------------------------------------------------------------- elementwise


def _binary(op_type: str, fused: bool) -> OpConverter:
    """Return a converter for a broadcasting binary op (optionally with fused activation)."""

    def convert(ctx: Converter, op: OperatorInfo) -> None:
        perm = _elementwise_layout(ctx, op.inputs[:2])
        inputs = [ctx.broadcast(index, perm) for index in op.inputs[:2]]
        activation = _activation(op.options) if fused else _NONE
        ctx.emit_activated(op_type, inputs, op.outputs[0], perm, activation)

    return convert


def _unary(op_type: str, **attrs: object) -> OpConverter:
    """Return a converter for a layout-free unary op."""

    def convert(ctx: Converter, op: OperatorInfo) -> None:
        source = op.inputs[0]
        ctx.emit(op_type, [ctx.value(source)], op.outputs[0], ctx.perm(source), **attrs)

    return convert


def _leaky_relu(ctx: Converter, op: OperatorInfo) -> None:
    source = op.inputs[0]
    alpha = float(op.options.Alpha()) if op.options is not None else 0.0  # schema default
    ctx.emit("LeakyRelu", [ctx.value(source)], op.outputs[0], ctx.perm(source), alpha=alpha)


def _prelu(ctx: Converter, op: OperatorInfo) -> None:
    perm = ctx.perm(op.inputs[0])
    inputs = [ctx.value(op.inputs[0]), ctx.broadcast(op.inputs[1], perm)]
    ctx.emit("PRelu", inputs, op.outputs[0], perm)


# --------------------------------------------------------------------------- shapes


def _pad(ctx: Converter, op: OperatorInfo) -> None:
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


def _reshape(ctx: Converter, op: OperatorInfo) -> None:
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


def _expand_dims(ctx: Converter, op: OperatorInfo) -> None:
    source, target = op.inputs[0], op.outputs[0]
    axis = _axis(
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


def _squeeze(ctx: Converter, op: OperatorInfo) -> None:
    source, target = op.inputs[0], op.outputs[0]
    rank, sig = ctx.rank(source), ctx.sig(source)
    dims = [int(d) for d in op.options.SqueezeDimsAsNumpy()] if op.options is not None else []
    dims = sorted(_axis(d, rank) for d in dims) or [a for a in range(rank) if sig[a] == 1]
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(target, np.squeeze(constant, tuple(dims)))
        return
    perm = ctx.perm(source)
    positions = sorted(inverse(perm)[d] for d in dims)
    axes = ctx.int64s(positions, f"{ctx.tensor_name(target)}__axes")
    ctx.emit("Squeeze", [ctx.value(source), axes], target, _squeezed_perm(perm, dims))


def _transpose(ctx: Converter, op: OperatorInfo) -> None:
    """Re-label the layout: a TFLite TRANSPOSE costs no ONNX node until a consumer needs it."""
    source, target = op.inputs[0], op.outputs[0]
    raw = ctx.require_const(op.inputs[1], "TRANSPOSE perm").reshape(-1).tolist()
    order = tuple(_axis(int(a), len(raw)) for a in raw)
    constant = ctx.const(source)
    if constant is not None:
        ctx.fold(target, np.transpose(constant, order))
        return
    new_perm = tuple(inverse(order)[axis] for axis in ctx.perm(source))
    ctx.set_value(target, ctx.value(source), new_perm)


def _concatenation(ctx: Converter, op: OperatorInfo) -> None:
    rank = ctx.rank(op.outputs[0])
    axis = _axis(op.options.Axis(), rank)
    perm = _elementwise_layout(ctx, op.inputs)
    inputs = [ctx.value(index, perm) for index in op.inputs]
    ctx.emit_activated(
        "Concat", inputs, op.outputs[0], perm, _activation(op.options), axis=inverse(perm)[axis]
    )


# --------------------------------------------------------------------------- reductions, matmul


def _reduce_max(ctx: Converter, op: OperatorInfo) -> None:
    source, target = op.inputs[0], op.outputs[0]
    rank = ctx.rank(source)
    dims = sorted({_axis(int(a), rank) for a in ctx.require_const(op.inputs[1], "axes").ravel()})
    keep = bool(op.options.KeepDims()) if op.options is not None else False
    perm = ctx.perm(source)
    if not dims:
        ctx.emit("Identity", [ctx.value(source)], target, perm)
        return
    axes = sorted(inverse(perm)[d] for d in dims)
    new_perm = perm if keep else _squeezed_perm(perm, dims)
    ctx.emit("ReduceMax", [ctx.value(source)], target, new_perm, axes=axes, keepdims=int(keep))


def _swap_last(rank: int) -> Perm:
    return (*range(rank - 2), rank - 1, rank - 2)


def _batch_matmul(ctx: Converter, op: OperatorInfo) -> None:
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


def _fully_connected(ctx: Converter, op: OperatorInfo) -> None:
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
        ctx.emit_activated("Gemm", inputs, target, (0, 1), _activation(options), transB=1)
        return
    flat_out = ctx.node("Gemm", inputs, ctx.fresh(f"{ctx.tensor_name(target)}__2d"), transB=1)
    if list(out_sig).count(-1) > 1:
        raise ctx.error("FULLY_CONNECTED keep_num_dims with several dynamic dimensions")
    shape = ctx.int64s(list(out_sig), f"{ctx.tensor_name(target)}__shape")
    ctx.emit_activated(
        "Reshape", [flat_out, shape], target, identity(len(out_sig)), _activation(options)
    )


# --------------------------------------------------------------------------- table


CONVERTERS: dict[str, OpConverter] = {
    "CONV_2D": _conv_2d,
    "DEPTHWISE_CONV_2D": _depthwise_conv_2d,
    "ADD": _binary("Add", fused=True),
    "MUL": _binary("Mul", fused=True),
    "SUB": _binary("Sub", fused=True),
    "MAXIMUM": _binary("Max", fused=False),
    "MINIMUM": _binary("Min", fused=False),
    "RELU": _unary("Relu"),
    "LEAKY_RELU": _leaky_relu,
    "PRELU": _prelu,
    "PAD": _pad,
    "MAX_POOL_2D": _max_pool_2d,
    "RESHAPE": _reshape,
    "CONCATENATION": _concatenation,
    "RESIZE_BILINEAR": _resize_bilinear,
    "DEPTH_TO_SPACE": _depth_to_space,
    "DEQUANTIZE": _dequantize,
    "DENSIFY": _densify,
    "EXPAND_DIMS": _expand_dims,
    "SQUEEZE": _squeeze,
    "TRANSPOSE": _transpose,
    "BATCH_MATMUL": _batch_matmul,
    "LOG": _unary("Log"),
    "REDUCE_MAX": _reduce_max,
    "FULLY_CONNECTED": _fully_connected,
}

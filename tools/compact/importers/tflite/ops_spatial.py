"""Converters of spatial TFLite ops: convolutions, pooling, resizing, depth to space."""

from __future__ import annotations

import numpy as np

from tools.compact.importers.tflite.converter import NCHW, Converter, Perm
from tools.compact.importers.tflite.ops_base import fused_activation, spatial_attrs
from tools.compact.importers.tflite.reader import OperatorInfo

CONV_WEIGHTS: Perm = (0, 3, 1, 2)  # [O, kh, kw, I] -> [O, I, kh, kw]
DEPTHWISE_WEIGHTS: Perm = (3, 0, 1, 2)  # [1, kh, kw, C*m] -> [C*m, 1, kh, kw]


def _convolution(ctx: Converter, op: OperatorInfo, depthwise: bool) -> None:
    """Convert CONV_2D / DEPTHWISE_CONV_2D to an NCHW ONNX Conv (grouped when needed)."""
    options = op.options
    data, weights = op.inputs[0], op.inputs[1]
    in_sig, w_sig = ctx.sig(data), ctx.sig(weights)
    if in_sig[3] < 0:
        raise ctx.error(f"{op.name} needs a static channel count")
    weight_perm = DEPTHWISE_WEIGHTS if depthwise else CONV_WEIGHTS
    inputs = [ctx.value(data, NCHW), ctx.value(weights, weight_perm)]
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        inputs.append(ctx.value(op.inputs[2]))
    kernel = list(w_sig[1:3])
    strides = [options.StrideH(), options.StrideW()]
    dilations = [options.DilationHFactor(), options.DilationWFactor()]
    pads = spatial_attrs(ctx, in_sig[1:3], kernel, strides, dilations, options.Padding())
    group = in_sig[3] if depthwise else in_sig[3] // w_sig[3]
    ctx.emit_activated(
        "Conv",
        inputs,
        op.outputs[0],
        NCHW,
        fused_activation(options),
        kernel_shape=kernel,
        strides=strides,
        dilations=dilations,
        group=group,
        **pads,
    )


def conv_2d(ctx: Converter, op: OperatorInfo) -> None:
    """Convert CONV_2D."""
    _convolution(ctx, op, depthwise=False)


def depthwise_conv_2d(ctx: Converter, op: OperatorInfo) -> None:
    """Convert DEPTHWISE_CONV_2D."""
    _convolution(ctx, op, depthwise=True)


def max_pool_2d(ctx: Converter, op: OperatorInfo) -> None:
    """Convert MAX_POOL_2D to an NCHW MaxPool with TFLite's padding."""
    options = op.options
    kernel = [options.FilterHeight(), options.FilterWidth()]
    strides = [options.StrideH(), options.StrideW()]
    in_sig = ctx.sig(op.inputs[0])
    attrs = spatial_attrs(ctx, in_sig[1:3], kernel, strides, [1, 1], options.Padding())
    ctx.emit_activated(
        "MaxPool",
        [ctx.value(op.inputs[0], NCHW)],
        op.outputs[0],
        NCHW,
        fused_activation(options),
        kernel_shape=kernel,
        strides=strides,
        **attrs,
    )


def resize_bilinear(ctx: Converter, op: OperatorInfo) -> None:
    """Convert RESIZE_BILINEAR to a linear Resize with the same sampling grid."""
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


def depth_to_space(ctx: Converter, op: OperatorInfo) -> None:
    """Convert DEPTH_TO_SPACE (TensorFlow's DCR order)."""
    ctx.emit(
        "DepthToSpace",
        [ctx.value(op.inputs[0], NCHW)],
        op.outputs[0],
        NCHW,
        blocksize=op.options.BlockSize(),
        mode="DCR",  # DCR is TensorFlow's depth order
    )

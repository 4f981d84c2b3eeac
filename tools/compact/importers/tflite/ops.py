"""The table of TFLite builtin ops the importer converts, by TFLite op name."""

from __future__ import annotations

from tools.compact.importers.tflite.ops_base import OpConverter
from tools.compact.importers.tflite.ops_math import (
    batch_matmul,
    binary,
    densify,
    dequantize,
    fully_connected,
    leaky_relu,
    prelu,
    reduce_max,
    unary,
)
from tools.compact.importers.tflite.ops_shape import (
    concatenation,
    expand_dims,
    pad,
    reshape,
    squeeze,
    transpose,
)
from tools.compact.importers.tflite.ops_spatial import (
    conv_2d,
    depth_to_space,
    depthwise_conv_2d,
    max_pool_2d,
    resize_bilinear,
)

CONVERTERS: dict[str, OpConverter] = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "ADD": binary("Add", fused=True),
    "MUL": binary("Mul", fused=True),
    "SUB": binary("Sub", fused=True),
    "MAXIMUM": binary("Max", fused=False),
    "MINIMUM": binary("Min", fused=False),
    "RELU": unary("Relu"),
    "LEAKY_RELU": leaky_relu,
    "PRELU": prelu,
    "PAD": pad,
    "MAX_POOL_2D": max_pool_2d,
    "RESHAPE": reshape,
    "CONCATENATION": concatenation,
    "RESIZE_BILINEAR": resize_bilinear,
    "DEPTH_TO_SPACE": depth_to_space,
    "DEQUANTIZE": dequantize,
    "DENSIFY": densify,
    "EXPAND_DIMS": expand_dims,
    "SQUEEZE": squeeze,
    "TRANSPOSE": transpose,
    "BATCH_MATMUL": batch_matmul,
    "LOG": unary("Log"),
    "REDUCE_MAX": reduce_max,
    "FULLY_CONNECTED": fully_connected,
}

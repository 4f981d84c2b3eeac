"""What the TFLite op converters share: fused activations, axes, padding and layouts.

Each converter reads its operator's inputs through the :class:`Converter`, which hands them
out in the layout the converter asks for, and records its outputs with their layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import tflite

from tools.compact.importers.tflite.converter import Converter, Perm, identity
from tools.compact.importers.tflite.reader import OperatorInfo

OpConverter = Callable[[Converter, OperatorInfo], None]

NONE = tflite.ActivationFunctionType.NONE


def fused_activation(options: Any) -> int:
    """Return the fused activation of an operator's options (none without options)."""
    return int(options.FusedActivationFunction()) if options is not None else NONE


def positive_axis(axis: int, rank: int) -> int:
    """Return a possibly negative axis as an index from 0."""
    return axis + rank if axis < 0 else axis


def spatial_attrs(
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


def elementwise_layout(ctx: Converter, indices: Sequence[int]) -> Perm:
    """Pick the layout of a broadcasting op: that of its first full-rank runtime input."""
    rank = max(ctx.rank(index) for index in indices)
    for index in indices:
        if ctx.const(index) is None and ctx.rank(index) == rank:
            return ctx.perm(index)
    return identity(rank)


def squeezed_perm(perm: Perm, removed: Sequence[int]) -> Perm:
    """Return the layout left after removing TFLite axes ``removed``."""
    return tuple(axis - sum(r < axis for r in removed) for axis in perm if axis not in removed)

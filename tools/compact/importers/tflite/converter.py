"""The graph builder of the TFLite importer: names, constants and tensor layouts.

Every converted tensor carries a permutation ``perm`` (ONNX axis ``i`` holds TFLite axis
``perm[i]``); :meth:`Converter.value` hands a tensor out in the layout a consumer asks for,
emitting a Transpose (or a Reshape, when only size-1 axes move) only where it is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

from tools.compact.errors import ToolError
from tools.compact.importers.tflite.reader import ACTIVATION_NAMES, TensorInfo, TfliteGraph

Perm = tuple[int, ...]  # ONNX axis i holds TFLite axis perm[i]
NCHW: Perm = (0, 3, 1, 2)


def identity(rank: int) -> Perm:
    """Return the identity permutation of ``rank`` axes."""
    return tuple(range(rank))


def inverse(perm: Perm) -> Perm:
    """Return the inverse permutation."""
    result = [0] * len(perm)
    for position, axis in enumerate(perm):
        result[axis] = position
    return tuple(result)


def perm_suffix(perm: Perm) -> str:
    """Return the name suffix of a layout (empty for the TFLite layout)."""
    if perm == identity(len(perm)):
        return ""
    if perm == NCHW:
        return "__nchw"
    return "__p" + "".join(str(axis) for axis in perm)


@dataclass(frozen=True)
class Value:
    """A converted tensor: its ONNX name and layout."""

    name: str
    perm: Perm


class Converter:
    """Builds the ONNX graph; op converters call its helpers."""

    def __init__(self, graph: TfliteGraph) -> None:
        self.graph = graph
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, TensorProto] = {}
        self.values: dict[int, Value] = {}
        self.folded: dict[int, np.ndarray] = {}
        self.op_index = -1
        self._layouts: dict[tuple[int, Perm], str] = {}
        self._tensor_names = self._unique_tensor_names()
        self._used: set[str] = set(self._tensor_names.values())

    def _unique_tensor_names(self) -> dict[int, str]:
        names: dict[int, str] = {}
        seen: set[str] = set()
        for tensor in self.graph.tensors:
            name = tensor.name or f"tensor_{tensor.index}"
            if name in seen:
                name = f"{name}__{tensor.index}"
            seen.add(name)
            names[tensor.index] = name
        return names

    # -- errors and tensor facts

    def tensor_name(self, index: int) -> str:
        """Return the unique ONNX base name of a TFLite tensor."""
        return self._tensor_names[index]

    def error(self, message: str) -> ToolError:
        """Return a ToolError about the current operator."""
        op = self.graph.operators[self.op_index] if self.op_index >= 0 else None
        where = f" (operator {op.index}, {op.name})" if op else ""
        return ToolError(f"{self.graph.path}{where}: {message}")

    def tensor(self, index: int) -> TensorInfo:
        """Return the TFLite record of a tensor."""
        return self.graph.tensors[index]

    def sig(self, index: int) -> tuple[int, ...]:
        """Return the shape of a tensor with -1 for dynamic dimensions."""
        if index in self.folded:
            return tuple(self.folded[index].shape)
        return self.tensor(index).signature

    def rank(self, index: int) -> int:
        """Return the rank of a tensor."""
        return len(self.sig(index))

    def const(self, index: int) -> np.ndarray | None:
        """Return the constant value of a tensor, or None for a runtime tensor."""
        if index < 0:
            return None
        if index in self.folded:
            return self.folded[index]
        return self.tensor(index).data

    def require_const(self, index: int, what: str) -> np.ndarray:
        """Return a constant input or raise a ToolError naming ``what``."""
        value = self.const(index)
        if value is None:
            raise self.error(f"{what} must be a constant tensor")
        return value

    def perm(self, index: int) -> Perm:
        """Return the layout of a converted tensor (constants are in TFLite layout)."""
        if index in self.values:
            return self.values[index].perm
        return identity(self.rank(index))

    # -- graph building

    def fresh(self, base: str) -> str:
        """Return an unused ONNX name derived from ``base``."""
        name, counter = base, 1
        while name in self._used:
            name, counter = f"{base}_{counter}", counter + 1
        self._used.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        """Append a node with one output and return the output name."""
        name = self.fresh(f"{op_type}_{self.op_index}" if self.op_index >= 0 else op_type)
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        return output

    def initializer(self, array: np.ndarray, base: str) -> str:
        """Add a constant and return its name."""
        name = self.fresh(base)
        self.initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def int64s(self, values: Sequence[int], base: str) -> str:
        """Add a 1-D int64 constant (shapes, axes, pads)."""
        return self.initializer(np.asarray(values, dtype=np.int64), base)

    def output_name(self, index: int, perm: Perm) -> str:
        """Return the ONNX name for tensor ``index`` stored in layout ``perm``."""
        base = self._tensor_names[index]
        suffix = perm_suffix(perm)
        if not suffix and (index, perm) not in self._layouts:
            return base
        return self.fresh(base + suffix)

    def set_value(self, index: int, name: str, perm: Perm) -> None:
        """Record the ONNX value holding TFLite tensor ``index`` in layout ``perm``."""
        self.values[index] = Value(name, perm)
        self._layouts[(index, perm)] = name

    def emit(
        self, op_type: str, inputs: Sequence[str], index: int, perm: Perm, **attrs: Any
    ) -> str:
        """Add a node computing tensor ``index`` in layout ``perm``."""
        name = self.node(op_type, inputs, self.output_name(index, perm), **attrs)
        self.set_value(index, name, perm)
        return name

    def fold(self, index: int, array: np.ndarray) -> None:
        """Record that tensor ``index`` is a constant computed at import time."""
        self.folded[index] = array

    # -- layouts

    def value(self, index: int, perm: Perm | None = None) -> str:
        """Return the ONNX name of tensor ``index`` in layout ``perm`` (current one if None)."""
        constant = self.const(index)
        if constant is not None:
            perm = identity(constant.ndim) if perm is None else perm
            key = (index, perm)
            if key not in self._layouts:
                base = self._tensor_names[index] + perm_suffix(perm)
                self._layouts[key] = self.initializer(np.transpose(constant, perm), base)
            return self._layouts[key]
        if index not in self.values:
            raise self.error(f"tensor {self._tensor_names[index]} is used before it is computed")
        current = self.values[index]
        if perm is None or perm == current.perm:
            return current.name
        if (index, perm) not in self._layouts:
            self._layouts[(index, perm)] = self._relayout(index, current, perm)
        return self._layouts[(index, perm)]

    def _relayout(self, index: int, current: Value, target: Perm) -> str:
        """Emit the Transpose (or Reshape) from ``current`` to ``target``; none if equivalent."""
        sig = self.sig(index)
        moves = tuple(inverse(current.perm)[axis] for axis in target)
        source_dims = [sig[axis] for axis in current.perm]
        target_dims = [sig[axis] for axis in target]
        kept = [position for position in range(len(moves)) if source_dims[position] != 1]
        moved = [position for position in moves if source_dims[position] != 1]
        if kept == moved:  # only size-1 axes move: same memory order
            if source_dims == target_dims:
                return current.name
            if target_dims.count(-1) <= 1:
                shape = self.int64s(target_dims, f"{self._tensor_names[index]}__shape")
                return self.node("Reshape", [current.name, shape], self.output_name(index, target))
        return self.node("Transpose", [current.name], self.output_name(index, target), perm=moves)

    def broadcast(self, index: int, perm: Perm) -> str:
        """Return tensor ``index`` ready to broadcast against a tensor in layout ``perm``."""
        rank, own = len(perm), self.rank(index)
        if own == rank:
            return self.value(index, perm)
        constant = self.const(index)
        if constant is not None:
            if constant.size == 1:
                return self.value(index)
            full = constant.reshape((1,) * (rank - own) + constant.shape)
            return self.initializer(np.transpose(full, perm), self._tensor_names[index] + "__bc")
        name = self.value(index, identity(own))
        if own == 0:
            return name
        axes = self.int64s(list(range(rank - own)), f"{name}__axes")
        name = self.node("Unsqueeze", [name, axes], self.fresh(f"{name}__unsqueezed"))
        if perm == identity(rank):
            return name
        return self.node("Transpose", [name], self.fresh(f"{name}{perm_suffix(perm)}"), perm=perm)

    def _activate(self, index: int, perm: Perm, activation: int, name: str) -> None:
        """Apply a fused activation to ``name`` and record the result as tensor ``index``."""
        if activation == tflite.ActivationFunctionType.NONE:
            self.set_value(index, name, perm)
            return
        if activation == tflite.ActivationFunctionType.RELU:
            self.emit("Relu", [name], index, perm)
        elif activation in (
            tflite.ActivationFunctionType.RELU6,
            tflite.ActivationFunctionType.RELU_N1_TO_1,
        ):
            low, high = (0.0, 6.0) if activation == tflite.ActivationFunctionType.RELU6 else (-1, 1)
            bounds = [
                self.initializer(np.array(v, np.float32), f"{name}__clip") for v in (low, high)
            ]
            self.emit("Clip", [name, *bounds], index, perm)
        else:  # TFLite kernels ignore TANH / SIGN_BIT here: refuse rather than guess
            raise self.error(f"unsupported fused activation {ACTIVATION_NAMES.get(activation)}")

    def emit_activated(
        self,
        op_type: str,
        inputs: Sequence[str],
        index: int,
        perm: Perm,
        activation: int,
        **attrs: Any,
    ) -> None:
        """Add a node for tensor ``index`` followed by its fused activation."""
        if activation == tflite.ActivationFunctionType.NONE:
            self.emit(op_type, inputs, index, perm, **attrs)
            return
        raw = self.fresh(f"{self._tensor_names[index]}{perm_suffix(perm)}__raw")
        self._activate(index, perm, activation, self.node(op_type, inputs, raw, **attrs))

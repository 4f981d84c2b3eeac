"""Import a TensorFlow Lite flatbuffer (float models) as an ONNX model.

The file is read with the ``tflite`` schema bindings into plain records first, so a truncated
or garbage file fails early with a :class:`ToolError` naming it. The graph is then rebuilt op
by op (converters in :mod:`tools.compact.importers.tflite_ops`) with ``onnx.helper``.

Layout: TFLite tensors are NHWC, ONNX convolutions are NCHW. Every converted tensor carries a
permutation ``perm`` (ONNX axis ``i`` holds TFLite axis ``perm[i]``). Layout-free ops keep the
layout of their inputs, convolutions and pools ask for NCHW, and a Transpose (or a Reshape, when
only size-1 axes move) is emitted only where a consumer needs a layout that is not available.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

from tools.compact.errors import ToolError

OPSET = 17
IR_VERSION = helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)])
Perm = tuple[int, ...]  # ONNX axis i holds TFLite axis perm[i]
NCHW: Perm = (0, 3, 1, 2)

_DTYPES: dict[int, np.dtype[Any]] = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"),
    tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.FLOAT64: np.dtype("<f8"),
    tflite.TensorType.INT32: np.dtype("<i4"),
    tflite.TensorType.INT64: np.dtype("<i8"),
    tflite.TensorType.INT16: np.dtype("<i2"),
    tflite.TensorType.INT8: np.dtype("i1"),
    tflite.TensorType.UINT8: np.dtype("u1"),
    tflite.TensorType.BOOL: np.dtype("?"),
}


def _enum_names(enum: type) -> dict[int, str]:
    """Map the values of a flatbuffers enum class to their names."""
    return {v: k for k, v in vars(enum).items() if not k.startswith("_")}


_TYPE_NAMES = _enum_names(tflite.TensorType)
_OP_NAMES = _enum_names(tflite.BuiltinOperator)
_OPTION_NAMES = _enum_names(tflite.BuiltinOptions)
_ACTIVATION_NAMES = _enum_names(tflite.ActivationFunctionType)
_INDEX_VECTORS = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}
_PARSE_ERRORS = (
    struct.error,
    IndexError,
    ValueError,
    TypeError,
    UnicodeDecodeError,
    KeyError,
    OverflowError,
    MemoryError,
)


# --------------------------------------------------------------------------- file records


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a tensor (per tensor, or per channel along ``axis``)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int


@dataclass(frozen=True)
class TensorInfo:
    """One TFLite tensor: name, type, static shape, shape signature (-1 = dynamic), data."""

    index: int
    name: str
    type_code: int
    shape: tuple[int, ...]
    signature: tuple[int, ...]
    data: np.ndarray | None
    quantization: Quantization | None

    @property
    def type_name(self) -> str:
        """Return the TFLite type name, e.g. ``FLOAT32``."""
        return _TYPE_NAMES.get(self.type_code, str(self.type_code))


@dataclass(frozen=True)
class OperatorInfo:
    """One TFLite operator with its (lazily read) builtin options object."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Any


@dataclass(frozen=True)
class TfliteGraph:
    """The main subgraph of a TFLite file, read into plain records."""

    path: Path
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _buffer_bytes(model: Any, raw: bytes, index: int) -> bytes | None:
    if index <= 0 or index >= model.BuffersLength():
        return None
    buffer = model.Buffers(index)
    offset = buffer.Offset()
    if offset > 1:  # models over 2 GB keep the data after the flatbuffer
        data = raw[offset : offset + buffer.Size()]
        if len(data) != buffer.Size():
            raise ValueError(f"buffer {index} runs past the end of the file")
        return data
    if buffer.DataLength() == 0:
        return None
    return bytes(buffer.DataAsNumpy().tobytes())


def _index_vector(kind: int, table: Any) -> np.ndarray:
    vector = _INDEX_VECTORS[kind]()
    vector.Init(table.Bytes, table.Pos)
    return np.asarray(vector.ValuesAsNumpy(), dtype=np.int64)


def densify(values: np.ndarray, shape: Sequence[int], sparsity: Any) -> np.ndarray:
    """Expand TFLite sparse storage (DENSE / SPARSE_CSR levels, optional blocks) to dense.

    Follows TFLite's ``FormatConverter``: levels are walked in traversal order and the
    values are stored in that order; block levels come after the original dimensions.
    """
    rank = len(shape)
    order = [int(v) for v in sparsity.TraversalOrderAsNumpy()]
    block_map = [int(v) for v in sparsity.BlockMapAsNumpy()] if sparsity.BlockMapLength() else []
    levels = [sparsity.DimMetadata(i) for i in range(sparsity.DimMetadataLength())]
    if len(order) != len(levels) or len(order) != rank + len(block_map):
        raise ValueError("inconsistent sparsity parameters")
    block_sizes = [levels[rank + i].DenseSize() for i in range(len(block_map))]
    prev = np.zeros(1, dtype=np.int64)
    columns: list[np.ndarray] = []
    for level in levels:
        if level.Format() == tflite.DimensionType.DENSE:
            size = level.DenseSize()
            steps = np.arange(size, dtype=np.int64)
            columns = [np.repeat(col, size) for col in columns]
            columns.append(np.tile(steps, prev.size))
            prev = (prev[:, None] * size + steps[None, :]).ravel()
        else:
            segments = _index_vector(level.ArraySegmentsType(), level.ArraySegments())
            indices = _index_vector(level.ArrayIndicesType(), level.ArrayIndices())
            starts, counts = segments[prev], segments[prev + 1] - segments[prev]
            first = np.repeat(starts - (np.cumsum(counts) - counts), counts)
            positions = first + np.arange(int(counts.sum()), dtype=np.int64)
            columns = [np.repeat(col, counts) for col in columns]
            columns.append(indices[positions])
            prev = positions
    coords: list[np.ndarray] = [np.empty(0)] * rank
    for level_index, dim in enumerate(order[:rank]):
        coords[dim] = columns[level_index]
    for level_index in range(rank, len(order)):
        block = order[level_index] - rank
        dim = block_map[block]
        coords[dim] = coords[dim] * block_sizes[block] + columns[level_index]
    if values.size != prev.size:
        raise ValueError(f"sparse tensor holds {values.size} values, its metadata {prev.size}")
    dense = np.zeros(int(np.prod(shape)), dtype=values.dtype)
    dense[np.ravel_multi_index(tuple(coords), tuple(shape))] = values
    return dense.reshape(shape)


def _read_quantization(tensor: Any) -> Quantization | None:
    params = tensor.Quantization()
    if params is None or params.ScaleLength() == 0:
        return None
    return Quantization(
        scale=np.asarray(params.ScaleAsNumpy(), dtype=np.float32),
        zero_point=np.asarray(params.ZeroPointAsNumpy(), dtype=np.int64),
        axis=params.QuantizedDimension(),
    )


def _tensor_data(model: Any, raw: bytes, tensor: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """Return the constant data of a tensor (densified if sparse), or None."""
    payload = _buffer_bytes(model, raw, tensor.Buffer())
    if payload is None:
        return None
    dtype = _DTYPES.get(tensor.Type())
    if dtype is None:
        raise ValueError(f"constant of unsupported type {_TYPE_NAMES.get(tensor.Type())}")
    values = np.frombuffer(payload, dtype=dtype)
    sparsity = tensor.Sparsity()
    if sparsity is not None:
        return densify(values, shape, sparsity)
    return values.reshape(shape)


def _read_tensor(model: Any, raw: bytes, graph: Any, index: int) -> TensorInfo:
    tensor = graph.Tensors(index)
    shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    signature = (
        tuple(int(v) for v in tensor.ShapeSignatureAsNumpy())
        if tensor.ShapeSignatureLength()
        else shape
    )
    data = _tensor_data(model, raw, tensor, shape)
    return TensorInfo(
        index=index,
        name=(tensor.Name() or b"").decode("utf-8"),
        type_code=tensor.Type(),
        shape=shape,
        signature=signature,
        data=data,
        quantization=_read_quantization(tensor),
    )


def _op_name(model: Any, code_index: int) -> str:
    code = model.OperatorCodes(code_index)
    builtin = int(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
    if builtin == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM({(code.CustomCode() or b'').decode('utf-8', 'replace')})"
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def _read_options(op: Any) -> Any:
    kind = op.BuiltinOptionsType()
    table = op.BuiltinOptions()
    if kind == 0 or table is None:
        return None
    options = getattr(tflite, _OPTION_NAMES[kind])()
    options.Init(table.Bytes, table.Pos)
    return options


def _read_operator(model: Any, graph: Any, index: int) -> OperatorInfo:
    op = graph.Operators(index)
    return OperatorInfo(
        index=index,
        name=_op_name(model, op.OpcodeIndex()),
        inputs=tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else (),
        outputs=tuple(int(v) for v in op.OutputsAsNumpy()) if op.OutputsLength() else (),
        options=_read_options(op),
    )


def read_tflite(path: Path) -> TfliteGraph:
    """Read the main subgraph of a ``.tflite`` file; raise ToolError if it is not valid."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ToolError(f"{path}: cannot read: {err}") from err
    if len(raw) < 8 or not tflite.Model.ModelBufferHasIdentifier(raw, 0):
        raise ToolError(f"{path}: not a TFLite model (no TFL3 identifier)")
    try:
        model = tflite.Model.GetRootAsModel(raw, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraph")
        graph = model.Subgraphs(0)
        tensors = tuple(_read_tensor(model, raw, graph, i) for i in range(graph.TensorsLength()))
        operators = tuple(_read_operator(model, graph, i) for i in range(graph.OperatorsLength()))
        inputs = tuple(int(v) for v in graph.InputsAsNumpy())
        outputs = tuple(int(v) for v in graph.OutputsAsNumpy())
        for index in (*inputs, *outputs, *(i for op in operators for i in op.inputs)):
            if not -1 <= index < len(tensors):
                raise ValueError(f"tensor index {index} out of range")
    except ToolError:
        raise
    except _PARSE_ERRORS as err:
        raise ToolError(f"{path}: truncated or corrupt TFLite file ({err})") from err
    return TfliteGraph(path, tensors, operators, inputs, outputs)


# --------------------------------------------------------------------------- layout helpers


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


# --------------------------------------------------------------------------- converter


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
            raise self.error(f"unsupported fused activation {_ACTIVATION_NAMES.get(activation)}")

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


# --------------------------------------------------------------------------- model assembly


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
    from tools.compact.importers.tflite_ops import CONVERTERS  # it imports this module

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

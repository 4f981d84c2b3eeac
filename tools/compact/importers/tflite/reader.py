"""Read a TFLite flatbuffer into plain records, failing early on a truncated or garbage file."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tflite

from tools.compact.errors import ToolError

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
ACTIVATION_NAMES = _enum_names(tflite.ActivationFunctionType)
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

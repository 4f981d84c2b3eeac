"""Convert an ONNX model to ncnn with pnnx, and refuse the result unless it computes the same.

pnnx ships as a standalone converter binary inside the ``pnnx`` wheel (installed with
``pip install --no-deps pnnx``: its torch dependency is only needed for TorchScript input).
It names the ncnn blobs by position: the i-th ONNX graph input becomes ``in{i}``, the i-th
output ``out{i}``; :func:`io_config` records that mapping (and the one-sample shapes) in the
form the engine reads from a manifest entry's config.

Before conversion the graph gets static input shapes and pnnx workarounds, each exact:

- the IR version is capped at what pnnx's embedded onnxruntime reads;
- ``Pad`` gets an explicit ``mode="constant"`` (pnnx leaves a ``Pad`` without it
  unconverted, and ncnn has no such layer);
- ``Min(x, +inf)`` and ``Max(x, -inf)`` become ``Identity`` (pnnx crashes on infinite
  constants);
- ``Reduce*`` over every axis (or every axis but a kept batch axis of size 1) loses its
  ``axes`` (pnnx converts only one-axis or all-axes reductions);
- a bias-free ``Gemm`` with a constant matrix gets a zero bias (pnnx then makes it an ncnn
  ``InnerProduct``; without one it emits a ``Gemm`` that computes the wrong shape).

The result is checked against onnxruntime on the original model, on random input: standard
normal, or uniform over the range the model really sees (``input_range``). The range matters
for a model that ends in sigmoids: YuNet fed standard-normal noise sees an almost black image,
its objectness outputs all lie near 1e-6, and there the two runtimes' float ``exp`` differ by
1e-7, a cosine of 0.9996 although every output on pixel values agrees to 0.99999999.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import ncnn
import numpy as np
import onnx
from onnx import numpy_helper

from custom_components.compact_ai.engine.errors import EngineError
from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from tools.compact.errors import ToolError

PNNX_MAX_IR_VERSION: Final = 13
MIN_COSINE: Final = 0.9999
PNNX_TIMEOUT_S: Final = 900
ANSI_ESCAPE: Final = re.compile(r"\x1b\[[0-9;]*m")
REDUCE_OPS: Final = frozenset({"ReduceMax", "ReduceMin", "ReduceMean", "ReduceSum", "ReduceProd"})
EXACT_FP32: Final = NcnnOptions()  # fp16 off: the check compares fp32 against fp32

Shapes = Mapping[str, Sequence[int]]
FixedShapes = Mapping[str, list[int]]


def pnnx_binary() -> Path:
    """Return the pnnx executable of the installed ``pnnx`` wheel (never imported: torch)."""
    spec = importlib.util.find_spec("pnnx")
    locations = spec.submodule_search_locations if spec else None
    binary = Path(locations[0]) / "pnnx" if locations else None
    if binary is None or not binary.is_file():
        raise ToolError("pnnx is not installed: pip install --no-deps pnnx==20261020")
    return binary


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Return the real inputs of the graph (not initializers), in order."""
    constants = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in constants]


def input_shapes_of(model: onnx.ModelProto, shapes: Shapes | None) -> dict[str, list[int]]:
    """Return every input's export shape: from ``shapes``, else the graph with batch 1."""
    unknown = set(shapes or {}) - {value.name for value in graph_inputs(model)}
    if unknown:
        raise ToolError(f"the model has no inputs {sorted(unknown)}")
    result = {}
    for value in graph_inputs(model):
        if shapes and value.name in shapes:
            result[value.name] = [int(d) for d in shapes[value.name]]
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in _dims(value)]
        dims[:1] = [1] * min(1, len(dims))
        if not all(dims):
            raise ToolError(f"input {value.name!r} has a dynamic size: give its shape")
        result[value.name] = dims
    return result


def _dims(value: onnx.ValueInfoProto) -> Any:
    return value.type.tensor_type.shape.dim


def _constant(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    return None


def _noop_bound_keeps(model: onnx.ModelProto, node: onnx.NodeProto) -> str | None:
    """Return ``x`` if ``node`` is ``Min(x, +inf)`` or ``Max(x, -inf)`` (either order)."""
    if node.op_type not in ("Min", "Max") or len(node.input) != 2:
        return None
    limit = np.inf if node.op_type == "Min" else -np.inf
    first, second = node.input
    for bound_name, kept in ((second, first), (first, second)):
        bound = _constant(model, bound_name)
        if bound is not None and bound.size == 1 and bool(bound.reshape(()) == limit):
            return str(kept)
    return None


def _add_zero_bias(model: onnx.ModelProto, node: onnx.NodeProto) -> None:
    """Give a bias-free ``Gemm`` with a constant matrix a zero bias (pnnx makes it Linear)."""
    if node.op_type != "Gemm" or len(node.input) != 2:
        return
    weight = _constant(model, node.input[1])
    if weight is None or weight.ndim != 2:
        return
    trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
    bias = f"{node.output[0]}.zero_bias"
    size = weight.shape[0] if trans_b else weight.shape[1]
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(size, np.float32), bias))
    node.input.append(bias)


def _reduces_all_axes(node: onnx.NodeProto, shape: list[int] | None) -> bool:
    """Whether a ``Reduce*`` reduces every axis, or every axis but a size-1 kept batch axis."""
    axes = next((a.ints for a in node.attribute if a.name == "axes"), None)
    if node.op_type not in REDUCE_OPS or axes is None or not shape:
        return False
    keepdims = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    reduced = {axis % len(shape) for axis in axes}
    every = set(range(len(shape)))
    return reduced == every or (reduced == every - {0} and shape[0] == 1 and keepdims == 1)


def prepare_for_pnnx(
    model: onnx.ModelProto, shapes: FixedShapes, alt_shapes: FixedShapes | None = None
) -> onnx.ModelProto:
    """Return a copy with the export input shapes and the pnnx workarounds applied.

    Sizes that differ between ``shapes`` and ``alt_shapes`` stay dynamic.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    model.ir_version = min(model.ir_version, PNNX_MAX_IR_VERSION)
    alt_shapes = alt_shapes or shapes
    for value in graph_inputs(model):
        pairs = zip(shapes[value.name], alt_shapes[value.name], strict=True)
        for axis, (dim, (size, alt)) in enumerate(zip(_dims(value), pairs, strict=True)):
            dim.Clear()
            if size == alt:
                dim.dim_value = size
            else:
                dim.dim_param = f"{value.name}_{axis}"
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model)
    known = {
        value.name: [dim.dim_value for dim in _dims(value)]
        for value in [*inferred.graph.value_info, *inferred.graph.input]
        if value.type.tensor_type.HasField("shape")
    }
    for node in model.graph.node:
        _add_zero_bias(model, node)
        kept_input = _noop_bound_keeps(model, node)
        if kept_input is not None:
            node.op_type = "Identity"
            del node.input[:]
            node.input.append(kept_input)
        elif node.op_type == "Pad" and not any(a.name == "mode" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("mode", "constant"))
        elif _reduces_all_axes(node, known.get(node.input[0])):
            kept = [a for a in node.attribute if a.name != "axes"]
            del node.attribute[:]
            node.attribute.extend(kept)
    return model


def _merge(shape: Sequence[int], alt: Sequence[int]) -> list[int]:
    return [int(a) if a == b else -1 for a, b in zip(shape, alt, strict=True)]


def io_config(
    model: onnx.ModelProto, shapes: Shapes | None = None, alt_shapes: Shapes | None = None
) -> dict[str, Any]:
    """Return the ``inputs``/``outputs`` config: one-sample shapes and ncnn blob names.

    Sizes that differ between ``shapes`` and ``alt_shapes`` are recorded as ``-1``.
    """
    fixed = input_shapes_of(model, shapes)
    alt = input_shapes_of(model, alt_shapes) if alt_shapes else fixed
    try:
        session = OnnxruntimeModel(model.SerializeToString(), name=model.graph.name)
        results = [
            session.run({name: np.zeros(shape, np.float32) for name, shape in feed.items()})
            for feed in (fixed, alt)
        ]
    except EngineError as err:
        raise ToolError(f"onnxruntime cannot run the model: {err}") from err
    return {
        "inputs": [
            {"name": name, "shape": _merge(shape, alt[name]), "ncnn_blob": f"in{i}"}
            for i, (name, shape) in enumerate(fixed.items())
        ],
        "outputs": [
            {"name": name, "shape": _merge(a.shape, b.shape), "ncnn_blob": f"out{i}"}
            for i, (name, a, b) in enumerate(zip(session.output_names, *results, strict=True))
        ],
    }


def _shape_arg(shapes: FixedShapes) -> str:
    return ",".join("[" + ",".join(map(str, shape)) + "]" for shape in shapes.values())


def run_pnnx(
    model: onnx.ModelProto,
    shapes: FixedShapes,
    alt_shapes: FixedShapes,
    fp16: bool,
    work: Path,
) -> None:
    """Convert ``model`` with pnnx in ``work``; its ncnn files are ``work/model.ncnn.*``."""
    onnx.save(model, work / "model.onnx")
    outputs = {
        "pnnxparam": "model.pnnx.param",
        "pnnxbin": "model.pnnx.bin",
        "pnnxpy": "model_pnnx.py",
        "pnnxonnx": "model.pnnx.onnx",
        "ncnnparam": "model.ncnn.param",
        "ncnnbin": "model.ncnn.bin",
        "ncnnpy": "model_ncnn.py",
    }
    command = [str(pnnx_binary()), "model.onnx", f"inputshape={_shape_arg(shapes)}"]
    command.append(f"fp16={int(fp16)}")
    if alt_shapes != shapes:
        command.append(f"inputshape2={_shape_arg(alt_shapes)}")
    command += [f"{key}={value}" for key, value in outputs.items()]
    try:
        result = subprocess.run(
            command, cwd=work, capture_output=True, text=True, timeout=PNNX_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise ToolError(f"pnnx did not finish in {PNNX_TIMEOUT_S} s") from err
    produced = all((work / name).exists() for name in ("model.ncnn.param", "model.ncnn.bin"))
    if result.returncode != 0 or not produced:
        log = ANSI_ESCAPE.sub("", result.stdout + result.stderr).strip().splitlines()
        todo = sorted({line for line in log if line.startswith("todo ")})
        raise ToolError(
            f"pnnx failed (exit {result.returncode}); unsupported: {todo or 'none reported'}; "
            + " | ".join(log[-3:])
        )


def unknown_layers(param: bytes) -> list[str]:
    """Return the layer types of an ncnn ``.param`` file that ncnn does not have."""
    lines = param.decode("ascii").splitlines()[2:]
    types = {line.split()[0] for line in lines if line.strip()}
    return sorted(kind for kind in types if ncnn.layer_to_index(kind) < 0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Return the cosine similarity of two arrays, flattened (1.0 for two zero arrays)."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y / norm) if norm else float(np.array_equal(x, y))


def _noise(
    rng: np.random.Generator, shape: Sequence[int], input_range: tuple[float, float] | None
) -> np.ndarray:
    if input_range is None:
        return rng.standard_normal(tuple(shape), np.float32)
    return rng.uniform(*input_range, tuple(shape)).astype(np.float32)


def compare_backends(
    model: onnx.ModelProto,
    param: bytes,
    weights: bytes,
    config: Mapping[str, Any],
    shapes: Shapes,
    seed: int = 0,
    input_range: tuple[float, float] | None = None,
) -> float:
    """Return the lowest per-output cosine of ncnn (fp32) against onnxruntime.

    Both run the same random input of the given ``shapes``: standard normal, or uniform over
    ``input_range``.
    """
    inputs = tensor_specs(config, "inputs", "export")
    outputs = tensor_specs(config, "outputs", "export")
    name = model.graph.name or "model"
    rng = np.random.default_rng(seed)
    feed = {spec.name: _noise(rng, shapes[spec.name], input_range) for spec in inputs}
    try:
        reference = OnnxruntimeModel(model.SerializeToString(), name=name, outputs=outputs)
        candidate = NcnnModel(
            param, weights, name=name, inputs=inputs, outputs=outputs, options=EXACT_FP32
        )
        pairs = list(zip(reference.run(feed), candidate.run(feed), strict=True))
    except (EngineError, ValueError) as err:
        raise ToolError(f"the ncnn model does not run: {err}") from err
    return min(cosine(a, b) for a, b in pairs)


def export_ncnn(
    onnx_path: Path,
    out_dir: Path,
    input_shapes: Shapes | None = None,
    *,
    alt_shapes: Shapes | None = None,
    seed: int = 0,
    fp16: bool = False,
    input_range: tuple[float, float] | None = None,
) -> tuple[Path, Path]:
    """Convert ``onnx_path`` to ``out_dir/<stem>.param`` and ``.bin``; return both paths.

    ``input_shapes`` fixes the inputs' sizes (default: the graph's, batch 1); sizes that
    differ in ``alt_shapes`` stay dynamic. :func:`io_config` with the same shapes gives
    the manifest config. Raises :class:`ToolError` if pnnx fails or ncnn's outputs differ
    from onnxruntime's (cosine below 0.9999 on random input, at every given shape; uniform
    over ``input_range`` when given, else standard normal).
    """
    model = onnx.load(onnx_path)
    shapes = input_shapes_of(model, input_shapes)
    alt = input_shapes_of(model, alt_shapes) if alt_shapes else shapes
    config = io_config(model, shapes, alt)
    with tempfile.TemporaryDirectory(prefix="pnnx_") as tmp:
        work = Path(tmp)
        run_pnnx(prepare_for_pnnx(model, shapes, alt), shapes, alt, fp16, work)
        param = (work / "model.ncnn.param").read_bytes()
        weights = (work / "model.ncnn.bin").read_bytes()
        unknown = unknown_layers(param)
        if unknown:
            raise ToolError(f"{onnx_path.name}: pnnx left ONNX operators ncnn lacks: {unknown}")
        similarity = min(
            compare_backends(model, param, weights, config, feed, seed, input_range)
            for feed in (shapes, alt)
        )
        if not similarity >= MIN_COSINE:
            raise ToolError(
                f"{onnx_path.name}: ncnn disagrees with onnxruntime (cosine {similarity:.6f})"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = (out_dir / f"{onnx_path.stem}.param", out_dir / f"{onnx_path.stem}.bin")
        paths[0].write_bytes(param)
        paths[1].write_bytes(weights)
    return paths

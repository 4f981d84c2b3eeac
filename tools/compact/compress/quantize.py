"""int8 quantization with onnxruntime.quantization, kept only where it pays.

``quantize_int8`` is static QDQ quantization (per-channel QInt8 weights, QUInt8 activations)
after ``quant_pre_process``. ``search`` tries the calibration methods and keeping the most
sensitive nodes in float, and picks the best measured fidelity. ``decide`` measures int8
against fp32 on onnxruntime with one thread and keeps int8 only when it is faster (or when
size is the point), returning the numbers behind the decision.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from tools.compact.compress.graph import Feed, Graph, run_tensors
from tools.compact.compress.measure import Fidelity, fidelity, latencies_ms, run_outputs
from tools.compact.progress import progress_bar

METHODS = ("MinMax", "Percentile", "Entropy")
# The calibrator keeps every intermediate tensor of every sample until it computes ranges;
# for SFace (112 px activations through 168 tensors) 120 samples took 15 GB and the run was
# killed. Ranges and histograms are folded in every (at most) this many samples instead.
CALIBRATION_CHUNK = 16
QUANTIZED_OPS = frozenset({"Conv", "Gemm", "MatMul"})


def _samples(feeds: Sequence[Feed]) -> Iterator[Feed]:
    """Split batched feeds into batch-1 feeds (the calibrator sees one sample at a time)."""
    for feed in feeds:
        size = len(next(iter(feed.values())))
        for index in range(size):
            yield {name: value[index : index + 1] for name, value in feed.items()}


def _chunk(total: int) -> int:
    """Return the largest chunk size up to :data:`CALIBRATION_CHUNK` that divides ``total``."""
    return next(size for size in range(min(CALIBRATION_CHUNK, total), 0, -1) if total % size == 0)


def _reader(feeds: Sequence[Feed]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class FeedReader(CalibrationDataReader):  # type: ignore[misc]
        """Hands onnxruntime's calibrator one sample after another, a chunk at a time."""

        def __init__(self) -> None:
            self._samples = list(_samples(feeds))
            self._items = iter(self._samples)

        def __len__(self) -> int:
            return len(self._samples)

        def set_range(self, start_index: int, end_index: int) -> None:
            self._items = iter(self._samples[start_index:end_index])

        def get_next(self) -> Feed | None:
            return next(self._items, None)

    return FeedReader()


def preprocess(model: onnx.ModelProto) -> onnx.ModelProto:
    """``quant_pre_process``: shape inference and graph optimization before quantizing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.onnx", Path(folder) / "out.onnx"
        onnx.save(model, source)
        quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
        result = onnx.load(target)
    for index, node in enumerate(result.graph.node):
        node.name = node.name or f"{node.op_type}_{index}"
    return result


def quantize_int8(
    model: onnx.ModelProto,
    feeds: Sequence[Feed],
    *,
    method: str = "MinMax",
    exclude: Sequence[str] = (),
    plain: bool = False,
) -> onnx.ModelProto:
    """Quantize (static int8 QDQ) an already pre-processed ``model``.

    ``plain`` uses ``quantize_static``'s defaults (the baseline); otherwise weights are
    per-channel QInt8 and activations QUInt8, calibrated with ``method``.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, source)
        reader = _reader(feeds)
        # onnxruntime calls the calibrator once per chunk (the option is named for MinMax but
        # every calibrator folds its ranges or histograms in per call)
        options: dict[str, Any] = {"extra_options": {"CalibStridedMinMax": _chunk(len(reader))}}
        if not plain:
            options = {
                "quant_format": QuantFormat.QDQ,
                "per_channel": True,
                "activation_type": QuantType.QUInt8,
                "weight_type": QuantType.QInt8,
                "calibrate_method": getattr(CalibrationMethod, method),
                "nodes_to_exclude": list(exclude),
                **options,
            }
        quantize_static(str(source), str(target), reader, **options)
        return onnx.load(target)


def node_errors(
    model: onnx.ModelProto, quantized: onnx.ModelProto, feeds: Sequence[Feed]
) -> dict[str, float]:
    """Error each quantizable node adds: relative error of its output minus of its input."""
    view = Graph(model)
    nodes = [n for n in view.graph.node if n.op_type in QUANTIZED_OPS]
    tensors = {n.output[0] for n in nodes} | {n.input[0] for n in nodes}
    present = {name for node in quantized.graph.node for name in node.output}
    names = sorted((tensors & present) - set(view.input_names))
    exact = run_tensors(model, feeds, names)
    approx = run_tensors(quantized, feeds, names)

    def error(name: str) -> float:
        if name not in exact:
            return 0.0
        diff = np.linalg.norm(approx[name] - exact[name])
        return float(diff / max(float(np.linalg.norm(exact[name])), 1e-12))

    return {n.name: error(n.output[0]) - error(n.input[0]) for n in nodes}


@dataclass
class QuantChoice:
    """The chosen int8 model and every configuration that was measured."""

    model: onnx.ModelProto
    method: str
    excluded: tuple[str, ...]
    fidelity: Fidelity
    tried: list[tuple[str, tuple[str, ...], Fidelity]] = field(default_factory=list)


def search(
    model: onnx.ModelProto,
    feeds: Sequence[Feed],
    eval_feeds: Sequence[Feed],
    *,
    methods: Sequence[str] = METHODS,
    exclude_counts: Sequence[int] = (1, 2, 4),
    min_gain: float = 1e-4,
    progress: bool = True,
) -> QuantChoice:
    """Quantize with each calibration method, then keep the worst nodes in float if it helps.

    A configuration replaces the current best only when its mean cosine is higher by at least
    ``min_gain`` (excluding nodes costs speed, so it must buy fidelity).
    """
    model = preprocess(model)
    reference = run_outputs(model, eval_feeds)
    best: QuantChoice | None = None
    tried: list[tuple[str, tuple[str, ...], Fidelity]] = []

    def consider(method: str, exclude: tuple[str, ...]) -> None:
        nonlocal best
        quantized = quantize_int8(model, feeds, method=method, exclude=exclude)
        fid = fidelity(run_outputs(quantized, eval_feeds), reference)
        tried.append((method, exclude, fid))
        if best is None or fid.cosine_mean > best.fidelity.cosine_mean + min_gain:
            best = QuantChoice(quantized, method, exclude, fid)

    for method in progress_bar(methods, "calibration methods", progress):
        consider(method, ())
    assert best is not None
    ranking = node_errors(model, best.model, feeds[:1])
    worst = tuple(sorted(ranking, key=lambda name: -ranking[name]))
    for count in progress_bar(exclude_counts, "float nodes", progress):
        consider(best.method, worst[:count])
    best.tried = tried
    return best


@dataclass(frozen=True)
class Int8Decision:
    """Whether to ship int8, and the measurements behind it."""

    keep_int8: bool
    reason: str
    fp32_ms: float
    int8_ms: float
    fp32_bytes: int
    int8_bytes: int

    @property
    def speedup(self) -> float:
        """fp32 latency over int8 latency."""
        return self.fp32_ms / self.int8_ms


def decide(
    fp32: onnx.ModelProto,
    int8: onnx.ModelProto,
    feed: Feed,
    *,
    min_speedup: float = 1.05,
    prefer_size: bool = False,
    timer: Callable[[Sequence[onnx.ModelProto], Feed], list[float]] = latencies_ms,
) -> Int8Decision:
    """Keep int8 only if it is at least ``min_speedup`` x faster (1 thread) or size matters."""
    fp32_ms, int8_ms = timer([fp32, int8], feed)
    sizes = fp32.ByteSize(), int8.ByteSize()
    speedup = fp32_ms / int8_ms
    if speedup >= min_speedup:
        return Int8Decision(True, f"int8 is {speedup:.2f}x faster", fp32_ms, int8_ms, *sizes)
    if prefer_size and sizes[1] < sizes[0]:
        reason = f"int8 is {sizes[0] / sizes[1]:.1f}x smaller (speed {speedup:.2f}x)"
        return Int8Decision(True, reason, fp32_ms, int8_ms, *sizes)
    reason = f"int8 is not faster ({speedup:.2f}x < {min_speedup:.2f}x): keeping fp32"
    return Int8Decision(False, reason, fp32_ms, int8_ms, *sizes)

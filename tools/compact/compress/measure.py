"""Measurements of a model: FLOPs, parameters, size, 1-thread latency and output fidelity."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from tools.compact.compress.graph import Feed, attrs, first_sample, session, tensor_shapes


@dataclass(frozen=True)
class FlopTerm:
    """FLOPs = coef * channels(out) * channels(inp) (or * 1 when ``inp`` is None)."""

    coef: int
    out: str
    inp: str | None


def flop_terms(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> list[FlopTerm]:
    """Return the multiply-add terms (2 FLOPs each) of every Conv, Gemm and MatMul."""
    terms: list[FlopTerm] = []
    for node in model.graph.node:
        if node.op_type == "Conv":
            x, w, y = node.input[0], shapes[node.input[1]], shapes[node.output[0]]
            group = int(attrs(node).get("group", 1))
            spatial = int(np.prod(y[2:], dtype=np.int64)) * int(np.prod(w[2:], dtype=np.int64))
            coef = 2 * y[0] * spatial
            if group == 1:
                terms.append(FlopTerm(coef, node.output[0], x))
            else:
                terms.append(FlopTerm(coef * w[1], node.output[0], None))
        elif node.op_type in ("Gemm", "MatMul") and len(shapes.get(node.input[0], ())) == 2:
            y = shapes[node.output[0]]
            terms.append(FlopTerm(2 * y[0], node.output[0], node.input[0]))
        elif node.op_type == "MatMul":
            a, y = shapes[node.input[0]], shapes[node.output[0]]
            rows = int(np.prod(y[:-1], dtype=np.int64))
            terms.append(FlopTerm(2 * rows * a[-1] * y[-1], node.output[0], None))
    return terms


def count_flops(terms: Sequence[FlopTerm], channels: Mapping[str, int]) -> int:
    """Evaluate FLOP terms for the given channel counts (axis 1 of each tensor)."""
    total = 0
    for term in terms:
        total += term.coef * channels[term.out] * (channels[term.inp] if term.inp else 1)
    return total


def flops(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> int:
    """FLOPs (2 per multiply-add) of the dense ops for one run of ``feed``."""
    shapes = tensor_shapes(model, feed)
    channels = {name: shape[1] if len(shape) > 1 else 1 for name, shape in shapes.items()}
    return count_flops(flop_terms(model, shapes), channels)


def parameter_count(model: onnx.ModelProto) -> int:
    """Return the number of elements in all initializers."""
    return sum(int(np.prod(init.dims, dtype=np.int64)) for init in model.graph.initializer)


def latencies_ms(
    models: Sequence[onnx.ModelProto | bytes], feed: Feed, runs: int = 30, warmup: int = 3
) -> list[float]:
    """Median 1-thread latency of each model, measured interleaved so that drift cancels."""
    sessions = [session(model, threads=1) for model in models]
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(warmup):
        for runner in sessions:
            runner.run(None, feed)
    for _ in range(runs):
        for runner, record in zip(sessions, times, strict=True):
            start = time.perf_counter()
            runner.run(None, feed)
            record.append(time.perf_counter() - start)
    return [float(np.median(record)) * 1000 for record in times]


def run_outputs(model: onnx.ModelProto | bytes, feeds: Sequence[Feed]) -> list[np.ndarray]:
    """Run every feed on one thread; return each output concatenated along the batch axis."""
    runner = session(model, threads=1)
    results = [runner.run(None, feed) for feed in feeds]
    return [np.concatenate([r[i] for r in results]) for i in range(len(results[0]))]


@dataclass(frozen=True)
class Fidelity:
    """Per-sample agreement of a model's outputs with a reference's."""

    cosine_mean: float
    cosine_min: float
    max_abs: float


def fidelity(actual: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> Fidelity:
    """Cosine (each sample's outputs flattened together) and max-abs error vs ``reference``."""
    a = np.concatenate([x.reshape(len(x), -1) for x in actual], axis=1).astype(np.float64)
    b = np.concatenate([x.reshape(len(x), -1) for x in reference], axis=1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cosine = (a * b).sum(1) / np.maximum(norms, 1e-30)
    return Fidelity(float(cosine.mean()), float(cosine.min()), float(np.abs(a - b).max()))


@dataclass(frozen=True)
class Report:
    """What the CLI prints for one model."""

    flops: int
    params: int
    size_bytes: int
    latency_ms: float
    fidelity: Fidelity | None

    def line(self, label: str) -> str:
        """One aligned human-readable line."""
        text = (
            f"{label:<10} {self.flops / 1e6:9.1f} MFLOPs {self.params / 1e6:7.3f} M params "
            f"{self.size_bytes / 1e6:7.2f} MB {self.latency_ms:8.2f} ms"
        )
        if self.fidelity:
            f = self.fidelity
            text += f"  cosine {f.cosine_mean:.5f} (min {f.cosine_min:.5f}) max-abs {f.max_abs:.4g}"
        return text

    def data(self) -> dict[str, float | int | None]:
        """Return the measurements as JSON data (fidelity ``None`` when not measured)."""
        f = self.fidelity
        return {
            "flops": self.flops,
            "params": self.params,
            "size_bytes": self.size_bytes,
            "latency_ms": self.latency_ms,
            "cosine_mean": f.cosine_mean if f else None,
            "cosine_min": f.cosine_min if f else None,
            "max_abs": f.max_abs if f else None,
        }


def compare(
    models: Sequence[onnx.ModelProto], feeds: Sequence[Feed], reference: onnx.ModelProto
) -> list[Report]:
    """Measure each model (latency interleaved) and its fidelity against ``reference``."""
    expected = run_outputs(reference, feeds)
    sample = first_sample(feeds[0])
    times = latencies_ms(models, sample)
    reports = []
    for model, ms in zip(models, times, strict=True):
        outputs = run_outputs(model, feeds)
        reports.append(
            Report(
                flops(model, sample),
                parameter_count(model),
                model.ByteSize(),
                ms,
                fidelity(outputs, expected),
            )
        )
    return reports

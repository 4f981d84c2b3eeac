"""``bench-backends``: onnxruntime against ncnn on every model of a tier, one thread each.

Per model: median latency of each backend (runs interleaved, so load from other processes
hits both alike), their ratio (from the same interleaved runs; also of the 10th percentiles,
the runs least disturbed by other processes), the cosine between their outputs, a sweep of
ncnn options (Winograd, sgemm, fp16 storage) with the one of lowest 10th-percentile ratio,
and the extra resident memory of loading the model and running it once (peak RSS in a fresh
process per backend; Linux only). Models whose pack entry has no ncnn files are converted
with pnnx first (``converted``).
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.errors import EngineError
from custom_components.compact_ai.engine.runtime.backend import TensorSpec, tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from custom_components.compact_ai.engine.runtime.pack import ModelEntry, ModelPack
from tools.compact.errors import ToolError

SWEEP = ("use_winograd_convolution", "use_sgemm_convolution", "use_fp16_storage")
Feed = dict[str, np.ndarray]


@dataclasses.dataclass
class ModelFiles:
    """Verified bytes of one model for both backends, and the config that describes them."""

    onnx: bytes
    param: bytes
    weights: bytes
    config: dict[str, Any]
    converted: bool


def model_files(pack: ModelPack, entry: ModelEntry, shape: list[int] | None) -> ModelFiles:
    """Return the entry's files; convert its ONNX model with pnnx if it has no ncnn files."""
    import onnx

    from tools.compact.ncnn.export import export_ncnn, graph_inputs, io_config

    (onnx_file,) = entry.files["onnxruntime"]
    model_bytes = pack.read_verified(onnx_file)
    if "ncnn" in entry.files:
        ncnn = {
            file.path.rsplit(".", 1)[-1]: pack.read_verified(file) for file in entry.files["ncnn"]
        }
        return ModelFiles(model_bytes, ncnn["param"], ncnn["bin"], entry.config, False)
    model = onnx.ModelProto.FromString(model_bytes)
    shapes = {graph_inputs(model)[0].name: shape} if shape else None
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model_bytes)
        param, weights = export_ncnn(path, Path(tmp), shapes)
        config = entry.config | io_config(model, shapes)
        return ModelFiles(model_bytes, param.read_bytes(), weights.read_bytes(), config, True)


def random_feed(inputs: Sequence[TensorSpec], shape: list[int] | None = None) -> Feed:
    """Return a standard-normal batch of one per input; ``shape`` sizes a dynamic input."""
    rng = np.random.default_rng(0)
    feed = {}
    for spec in inputs:
        size = shape if shape and -1 in spec.shape else spec.shape
        if -1 in size:
            raise ToolError("the model has a dynamic input: give its size with --input-shape")
        feed[spec.name] = rng.standard_normal(size, np.float32)
    return feed


def load_ncnn(files: ModelFiles, options: NcnnOptions) -> NcnnModel:
    """Load the ncnn model of ``files`` with ``options``, one thread."""
    return NcnnModel(
        files.param,
        files.weights,
        name="bench",
        inputs=tensor_specs(files.config, "inputs", "bench"),
        outputs=tensor_specs(files.config, "outputs", "bench"),
        options=options,
    )


def load_onnxruntime(files: ModelFiles) -> OnnxruntimeModel:
    """Load the onnxruntime model of ``files``, one thread."""
    outputs = tensor_specs(files.config, "outputs", "bench")
    return OnnxruntimeModel(files.onnx, name="bench", outputs=outputs)


def interleaved_ms(
    runners: Mapping[str, Callable[[], object]], runs: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Return each runner's wall times in ms, taking turns run by run."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(runs):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def _status_kib(field: str) -> int:
    """Return a ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ToolError(f"/proc/self/status has no {field} (Linux only)")


def _peak_extra_rss_mb(backend: str, files: ModelFiles, feed: Feed) -> float:
    """In a fresh process: peak RSS of loading and running once, minus RSS before loading."""
    importlib.import_module(backend)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status_kib("VmRSS")
    options = NcnnOptions.from_config(files.config.get("ncnn", {}))
    model = load_ncnn(files, options) if backend == "ncnn" else load_onnxruntime(files)
    model.run(feed)
    return (_status_kib("VmHWM") - before) / 1024


def extra_rss_mb(backend: str, files: ModelFiles, feed: Feed) -> float:
    """Return the peak extra RSS (MiB) of one model on one backend, in a fresh process."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(_peak_extra_rss_mb, backend, files, feed).result()
        except BrokenProcessPool as err:
            raise ToolError(f"the {backend} memory probe died (see its traceback above)") from err


def _label(options: NcnnOptions) -> str:
    return ",".join(f"{key.removeprefix('use_')}={int(getattr(options, key))}" for key in SWEEP)


def bench_model(
    pack: ModelPack, entry: ModelEntry, runs: int, shape: list[int] | None, rss: bool
) -> dict[str, Any]:
    """Benchmark one pack entry on both backends."""
    from tools.compact.ncnn.export import cosine

    files = model_files(pack, entry, shape)
    feed = random_feed(tensor_specs(files.config, "inputs", "bench"), shape)
    configured = NcnnOptions.from_config(files.config.get("ncnn", {}))
    variants = {
        _label(options): options
        for options in (
            dataclasses.replace(configured, **dict(zip(SWEEP, values, strict=True)))
            for values in itertools.product((True, False), repeat=len(SWEEP))
        )
    }
    reference = load_onnxruntime(files)
    expected = reference.run(feed)
    sweep: dict[str, dict[str, Any]] = {}
    for name, options in variants.items():  # one ncnn model at a time: they are large
        model = load_ncnn(files, options)
        outputs = model.run(feed)
        times = interleaved_ms(
            {"ort": partial(reference.run, feed), "ncnn": partial(model.run, feed)}, runs
        )
        ort_ms, ncnn_ms = statistics.median(times["ort"]), statistics.median(times["ncnn"])
        ort_p10, ncnn_p10 = (float(np.percentile(times[key], 10)) for key in ("ort", "ncnn"))
        sweep[name] = {
            "options": name,
            "onnxruntime_ms": round(ort_ms, 4),
            "ncnn_ms": round(ncnn_ms, 4),
            "ratio": round(ncnn_ms / ort_ms, 3),
            "ratio_p10": round(ncnn_p10 / ort_p10, 3),
            "cosine": min(cosine(a, b) for a, b in zip(expected, outputs, strict=True)),
        }
    # On a shared machine the fast runs (10th percentile) are the ones free of other load.
    best = min(sweep.values(), key=lambda row: float(row["ratio_p10"]))
    chosen = sweep[_label(configured)]
    return {
        "model": entry.files["onnxruntime"][0].path,
        "tier": entry.tier,
        "task": entry.task,
        "onnxruntime_ms": chosen["onnxruntime_ms"],
        "ncnn_ms": chosen["ncnn_ms"],
        "ratio": chosen["ratio"],
        "ratio_p10": chosen["ratio_p10"],
        "cosine": chosen["cosine"],
        "ncnn_options": chosen["options"],
        "ncnn_best": best,
        "ncnn_sweep": list(sweep.values()),
        "converted": files.converted,
        "rss_extra_mb": (
            {name: round(extra_rss_mb(name, files, feed), 1) for name in ("onnxruntime", "ncnn")}
            if rss
            else None
        ),
    }


def bench_tier(
    tier: str,
    pack_dir: Path | None,
    runs: int,
    tasks: Sequence[str] | None = None,
    shapes: Mapping[str, list[int]] | None = None,
    rss: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark every model of ``tier`` (or only ``tasks``); a failing model gets an error row."""
    from tools.compact.pack.reference import load_pack

    try:
        pack = load_pack(tier, pack_dir)
    except EngineError as err:
        raise ToolError(str(err)) from err
    if tier not in pack.tiers:
        raise ToolError(f"the pack at {pack.root} has no tier {tier!r}")
    shapes = shapes or {}
    rows = []
    for task, entry in sorted(pack.tiers[tier].models.items()):
        if tasks and task not in tasks:
            continue
        try:
            rows.append(bench_model(pack, entry, runs, shapes.get(task), rss))
        except (ToolError, EngineError, ValueError) as err:
            rows.append({"model": task, "tier": tier, "task": task, "error": str(err)})
    return rows


def report_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Return the table ``bench-backends`` prints: one line per model."""
    lines = [
        f"{'task':<20} {'ort ms':>8} {'ncnn ms':>8} {'ratio':>6} {'p10':>5} {'cosine':>9} "
        f"{'best ncnn ms (p10 ratio)':>24} {'rss MiB ort/ncnn':>16}  best options"
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['task']:<20} error: {row['error']}")
            continue
        rss, best = row["rss_extra_mb"], row["ncnn_best"]
        memory = f"{rss['onnxruntime']:.1f}/{rss['ncnn']:.1f}" if rss else "-"
        lines.append(
            f"{row['task']:<20} {row['onnxruntime_ms']:>8.2f} {row['ncnn_ms']:>8.2f} "
            f"{row['ratio']:>6.2f} {row['ratio_p10']:>5.2f} {row['cosine']:>9.6f} "
            f"{best['ncnn_ms']:>16.2f} ({best['ratio_p10']:>4.2f}) "
            f"{memory:>16}  {best['options']}"
            + ("  (converted with pnnx)" if row["converted"] else "")
        )
    return lines

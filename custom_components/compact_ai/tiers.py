"""What the user is told about the tiers: measured accuracy and speed, here and on this machine."""

from __future__ import annotations

import io
import statistics
import time

import numpy as np
from PIL import Image

from . import const
from .const import TIERS
from .engine.errors import EngineError
from .engine.face.recognizer import EMBEDDER_TASK, FaceRecognizer
from .engine.runtime.pack import ModelPack

BENCHMARK_RUNS = 5


def tier_summary() -> str:
    """Return one line per tier with what the toolkit measured (runs in an executor)."""
    try:
        pack = ModelPack.load(const.PACK_DIR)
    except EngineError as err:
        return f"- (the model pack cannot be read: {err})"
    lines = []
    for tier in TIERS:
        if tier not in pack.tiers:
            lines.append(f"- {tier}: not in this pack")
            continue
        metrics = pack.tiers[tier].models[EMBEDDER_TASK].metrics
        parts = []
        if "lfw_accuracy" in metrics:
            parts.append(f"{metrics['lfw_accuracy']:.1%} verification accuracy")
        for backend in ("onnxruntime", "ncnn"):
            if f"ms_per_face_{backend}" in metrics:
                parts.append(f"{metrics[f'ms_per_face_{backend}']:.0f} ms/face ({backend})")
        lines.append(f"- {tier}: " + (", ".join(parts) or "not measured"))
    return "\n".join(lines)


def benchmark(backend: str, frame: bytes | None) -> dict[str, str]:
    """Time a scan of ``frame`` (or a blank frame) with each tier here (runs in an executor)."""
    if frame is None:
        buffer = io.BytesIO()
        Image.fromarray(np.full((480, 640, 3), 128, np.uint8)).save(buffer, format="JPEG")
        frame = buffer.getvalue()
    results: dict[str, str] = {}
    try:
        pack = ModelPack.load(const.PACK_DIR)
    except EngineError as err:
        return dict.fromkeys(TIERS, str(err))
    for tier in TIERS:
        try:
            recognizer = FaceRecognizer.load(pack, tier, backend)
            recognizer.scan(frame)  # warm-up
            times = []
            for _ in range(BENCHMARK_RUNS):
                start = time.perf_counter()
                scan = recognizer.scan(frame)
                times.append((time.perf_counter() - start) * 1000)
        except EngineError as err:
            results[tier] = f"cannot run ({err})"
            continue
        faces = len(scan.recognitions)
        results[tier] = f"{statistics.median(times):.0f} ms per frame ({faces} faces)"
    return results

"""``build-pack``: compress the reference models into the shipped accurate / balanced / fast tiers.

Steps, all deterministic for the same sources and seed:

1. Calibration chips from every photo of the first 30 % of identities (by sorted folder name;
   two chips per photo, one jittered); evaluation chips from the other 70 %. The chips come
   from the engine's own detector and aligner, so the evaluation measures exactly what the
   integration computes.
2. Face embedder candidates: the reference net and structured prunings of it at several FLOPs
   targets (dependency groups, calibration-only reconstruction).
3. Per candidate: int8 for onnxruntime (``quantize.search``: calibration method and the most
   sensitive layers kept in float, by measured fidelity) where it is faster or smaller; ncnn
   files from the same graph: int8 convolutions (:mod:`tools.compact.ncnn.int8`) when they cost no
   accuracy and are faster, else 8-bit codebook weights when they cost no accuracy, else
   fp16; latency on both backends (1 thread); verification accuracy on held-out pairs;
   identification TAR/FAR with half the held-out people as impostors.
4. Baselines in the same run: the fp32 reference and onnxruntime's plain ``quantize_static``
   on onnxruntime, the unpruned fp32 net on ncnn (with the fastest fp32 settings found:
   winograd off on the widest convolutions, no 4x3 winograd); the goals checked.
5. Tiers chosen by fixed rules (:mod:`.rules`); thresholds calibrated per tier.
6. The pack (``custom_components/compact_ai/models``), ``docs/model-report.md`` and a Pareto plot.
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from tools.compact.errors import ToolError
from tools.compact.pack.candidates import EMBEDDER, Builder, Candidate
from tools.compact.pack.rules import MAX_PACK_BYTES, check_goals, choose_tiers

SHARED_TASKS = ("face_detector", "speech_mel", "speech_embedding")  # YuNet: pack/proposer.py
MEL_INPUT = "serving_default_input:0"
COMMANDS_DIR = "commands"


def _shared_models(root: Path, reference: Path) -> dict[str, dict[str, Any]]:
    """Detectors and speech models for every tier: ONNX and ncnn, both storing fp16 weights.

    The ONNX files compute in float32
    (:func:`~tools.compact.compress.passes.store_weights_fp16`); the detectors' weights came
    from TFLite as fp16, so they lose nothing.
    """
    from tools.compact.compress.passes import store_weights_fp16
    from tools.compact.ncnn.export import export_ncnn, io_config

    folder = root / "shared"
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for task in SHARED_TASKS:
        source = reference / f"{task}.onnx"
        shapes = {MEL_INPUT: [1, 16000]} if task == "speech_mel" else None
        alt = {MEL_INPUT: [1, 1760]} if task == "speech_mel" else None
        model = onnx.load(source)
        onnx.save(store_weights_fp16(model), folder / f"{task}.onnx")
        param, weights = export_ncnn(source, folder, shapes, alt_shapes=alt, fp16=True)
        config = io_config(model, shapes, alt)
        if task.startswith("face_detector"):
            variant = "full" if task.endswith("full") else "short"
            config.update(variant=variant, input_size=192 if variant == "full" else 128)
        entries[task] = {
            "files": {"onnxruntime": [folder / f"{task}.onnx"], "ncnn": [param, weights]},
            "config": config,
        }
    return entries


def write_pack(
    root: Path,
    tiers: dict[str, Candidate],
    shared: dict[str, dict[str, Any]],
    about: dict[str, Any],
) -> None:
    """Write the embedder files of the chosen candidates and the manifest."""
    from tools.compact.pack.writer import add_model

    for tier, candidate in tiers.items():
        folder = root / candidate.name
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"face_embedder.{ext}" for ext in ("onnx", "param", "bin")]
        for path, data in zip(
            paths, (candidate.onnx_bytes, candidate.param, candidate.weights), strict=True
        ):
            path.write_bytes(data)
        metrics = {**candidate.metrics, **about}
        config = {
            **candidate.config,
            "threshold": candidate.metrics["threshold_far_0_1"],
            "unlock_threshold": candidate.metrics["unlock_threshold"],
        }
        add_model(
            root,
            tier,
            EMBEDDER,
            {"onnxruntime": paths[:1], "ncnn": paths[1:]},
            config=config,
            metrics=metrics,
            description=f"face embedder {candidate.name}",
        )
        for task, entry in shared.items():
            add_model(root, tier, task, entry["files"], config=entry["config"], metrics=about)


def pack_bytes(root: Path) -> int:
    """Total size of every file the manifest lists (each file once)."""
    manifest = json.loads((root / "manifest.json").read_text())
    seen = {
        file["path"]: file["size"]
        for tier in manifest["tiers"].values()
        for entry in tier["models"].values()
        for files in entry["files"].values()
        for file in files
    }
    return sum(seen.values())


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cpu_name() -> str:
    """Return the CPU model as Linux names it, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {platform.machine()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build(
    out: Path, evaldata: Path, targets: tuple[float, ...], seed: int, progress: bool
) -> dict[str, Any]:
    """Run the whole pipeline into ``out``; return the report data."""
    from tools.compact.compress.prune import analyze, prune
    from tools.compact.pack.proposer import add_proposer

    if not (evaldata / "faces").is_dir():
        raise ToolError(f"{evaldata}/faces: calibration and evaluation photos are needed")
    builder = Builder(evaldata, seed, progress)
    reference = onnx.load(builder.reference / "face_embedder.onnx")
    feeds = builder.feeds()
    analysis = analyze(reference, feeds, feeds[:4], progress=progress)
    candidates = []
    for target in targets:
        started = time.perf_counter()
        if target >= 1.0:
            model = reference
        else:
            model = prune(
                reference, feeds, target, analysis=analysis, seed=seed, progress=progress
            ).model
        candidate = builder.finish(Candidate(f"embedder_{round(target * 100):03d}", target, model))
        candidate.metrics["build_seconds"] = round(time.perf_counter() - started, 1)
        candidates.append(candidate)
    baselines, baseline_runners = builder.baselines(reference)
    builder.time_all(candidates, baselines, baseline_runners)
    for candidate in candidates:
        candidate.runners = {}  # the loaded models are not needed any more
    staging = Path(tempfile.mkdtemp(prefix="pack_"))
    shared = _shared_models(staging, builder.reference)
    shared_bytes = sum(
        p.stat().st_size for entry in shared.values() for ps in entry["files"].values() for p in ps
    )
    commands = folder_bytes(out / COMMANDS_DIR)
    fp32 = {
        "lfw_accuracy": baselines["fp32 reference"]["lfw_accuracy"],
        "lfw_accuracy_ncnn": baselines["ncnn fp32"]["lfw_accuracy"],
    }
    tiers = choose_tiers(
        candidates,
        MAX_PACK_BYTES - shared_bytes - commands,
        reference=fp32,
        fp32_ms=baselines["fp32 reference"]["ms"],
    )
    about = {
        "measured_on": cpu_name(),
        "evaluation": f"{builder.held_out_identities} held-out LFW identities "
        f"({len(builder.eval_set.people)} faces, {len(builder.eval_set.pairs)} pairs); "
        f"calibration on {builder.calibration_identities} other identities",
    }
    write_pack(staging, tiers, shared, about)
    add_proposer(staging, builder.reference.parent)  # measured later: add-proposer --frames
    total = pack_bytes(staging) + commands
    if total > MAX_PACK_BYTES:
        raise ToolError(f"the pack is {total:,d} bytes, over the {MAX_PACK_BYTES:,d} limit")
    for old in [out / "manifest.json", out / "shared", *out.glob("embedder_*")]:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    shutil.copytree(staging, out, dirs_exist_ok=True)  # other folders (command sets) stay
    shutil.rmtree(staging)
    return {
        "candidates": candidates,
        "tiers": tiers,
        "baselines": baselines,
        "goals": check_goals(tiers, baselines),
        "bytes": total,
        "about": about,
    }

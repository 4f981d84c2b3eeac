"""``build-pack``: compress the reference models into the shipped accurate / balanced / fast tiers.

Steps, all deterministic for the same sources and seed:

1. Calibration chips from every photo of the first 30 % of identities (by sorted folder name;
   two chips per photo, one jittered); evaluation chips from the other 70 %. The chips come
   from the engine's own detector and aligner, so the evaluation measures exactly what the
   integration computes.
2. Face embedder candidates from each source (SFace, dlib's ResNet; :mod:`.embedders`), in
   the chip framing it wants: the reference net and structured prunings of it at several
   FLOPs targets (dependency groups, calibration-only reconstruction).
3. Per candidate: PReLU as Relu arithmetic and int8 for onnxruntime (``quantize.search``:
   calibration method and the most sensitive layers kept in float, by measured fidelity)
   where it is faster or smaller; ncnn
   files from the same graph: int8 convolutions (:mod:`tools.compact.ncnn.int8`) when they cost no
   accuracy and are faster, else 8-bit codebook weights when they cost no accuracy, else
   fp16; latency on both backends (1 thread); verification accuracy on held-out pairs;
   identification TAR/FAR with half the held-out people as impostors; the door's unlock
   distance (no dev impostor accepted, on either backend) and the owners' TAR there.
4. Baselines in the same run, per source: the imported fp32 net and onnxruntime's plain
   ``quantize_static`` on onnxruntime, the fp32 net on ncnn (with the fastest fp32 settings
   found: winograd off on the widest convolutions, no 4x3 winograd).
5. Tiers chosen by fixed rules (:mod:`.rules`), checked against the goals; thresholds
   calibrated per tier.
6. The pack (``custom_components/compact_ai/models``, with ``NOTICE.md`` and the license
   text), ``docs/model-report.md`` and a Pareto plot.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from tools.compact.errors import ToolError
from tools.compact.pack import resume
from tools.compact.pack.candidates import EMBEDDER, Builder, Candidate, time_all
from tools.compact.pack.embedders import SOURCES, EmbedderSource, candidate_name
from tools.compact.pack.notice import LICENSE_DIR, NOTICE_NAME, write_notice
from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack
from tools.compact.pack.rules import MAX_PACK_BYTES_WITH_REASON, check_goals, choose_pack
from tools.compact.pack.students import Student, check_teacher
from tools.compact.paths import REPO_ROOT

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
            source=candidate.source.about(),
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


def _say(line: str) -> None:
    """Report a finished candidate at once (a run takes hours; stdout is the report's)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _students(builder: Builder, students: list[Student], seed: int, code: str) -> list[Candidate]:
    """Quantize, export and measure one source's distilled students (cached like the rest)."""
    found = []
    for student in students:
        check_teacher(student, builder.reference)
        key = resume.candidate_key(
            builder.source, student.fraction, seed, builder.photos, code + student.sha256
        )
        kept = resume.load(key)
        if kept is not None:
            _say(f"{kept.name}: measured by an earlier run ({resume.folder(key)})")
            found.append(kept)
            continue
        started = time.perf_counter()
        made = Candidate(student.name, student.fraction, student.model, builder.source)
        candidate = builder.finish(made)
        candidate.metrics["distillation"] = student.recipe
        candidate.metrics["build_seconds"] = round(time.perf_counter() - started, 1)
        _say(f"{candidate.name}: {json.dumps(candidate.metrics, sort_keys=True)}")
        resume.save(key, candidate)
        found.append(candidate)
    return found


def _candidates(
    builder: Builder, fractions: list[float], seed: int, progress: bool, code: str
) -> list[Candidate]:
    """Prune (below 1.0), quantize, export and measure one source's candidates.

    A candidate an earlier run finished with the same inputs and ``code`` (the fingerprint
    of the code this run started with) is taken from the cache.
    """
    from tools.compact.compress.prune import analyze, prune

    reference = onnx.load(builder.reference)
    feeds = builder.feeds()
    analysis = None
    found = []
    for fraction in fractions:
        key = resume.candidate_key(builder.source, fraction, seed, builder.photos, code)
        kept = resume.load(key)
        if kept is not None:
            _say(f"{kept.name}: measured by an earlier run ({resume.folder(key)})")
            found.append(kept)
            continue
        started = time.perf_counter()
        if fraction >= 1.0:
            model = reference
        else:
            analysis = analysis or analyze(reference, feeds, feeds[:4], progress=progress)
            model = prune(
                reference, feeds, fraction, analysis=analysis, seed=seed, progress=progress
            ).model
        name = candidate_name(builder.source, fraction)
        candidate = builder.finish(Candidate(name, fraction, model, builder.source))
        candidate.metrics["build_seconds"] = round(time.perf_counter() - started, 1)
        _say(f"{name}: {json.dumps(candidate.metrics, sort_keys=True)}")
        resume.save(key, candidate)
        found.append(candidate)
    return found


def build(
    out: Path,
    evaldata: Path,
    targets: list[tuple[EmbedderSource, float]],
    seed: int,
    progress: bool,
    students: list[Student] | None = None,
    frames: Path | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline into ``out``; return the report data.

    ``students`` (``distill``'s output, :mod:`.students`) are candidates of their source too.
    ``frames`` (``doorcam.py``'s output) measures detection per tier and calibrates each tier's
    door distance on door-camera frames (:mod:`.door_frames`).
    """
    from tools.compact.pack.proposer import add_proposer

    if not (evaldata / "faces").is_dir():
        raise ToolError(f"{evaldata}/faces: calibration and evaluation photos are needed")
    code = resume.code_fingerprint(REPO_ROOT)  # before any work: edits during a run do not count
    students = students or []
    sources = list(dict.fromkeys([*(s for s, _ in targets), *(s.source for s in students)]))
    candidates: list[Candidate] = []
    baselines: dict[str, dict[str, Any]] = {}
    runners: dict[str, Any] = {}
    feeds = {}
    for source in sources:
        builder = Builder(evaldata, seed, progress, source)
        fractions = [fraction for s, fraction in targets if s is source]
        candidates += _candidates(builder, fractions, seed, progress, code)
        candidates += _students(builder, [s for s in students if s.source is source], seed, code)
        for candidate in candidates:
            candidate.runners = {}  # loaded again for timing: frees memory meanwhile
        if source.name in SOURCES:  # a student's smaller chips have no imported net to compare
            rows, models = builder.baselines()
            baselines |= rows
            runners |= models
        feeds[source.name] = builder.timing_feed()
    time_all(candidates, baselines, runners, feeds)
    for candidate in candidates:
        candidate.runners = {}  # the loaded models are not needed any more
    staging = Path(tempfile.mkdtemp(prefix="pack_"))
    reference_dir = build_reference_pack()
    shared = _shared_models(staging, reference_dir / REFERENCE_TIER)
    shared_bytes = sum(
        p.stat().st_size for entry in shared.values() for ps in entry["files"].values() for p in ps
    )
    commands = folder_bytes(out / COMMANDS_DIR)
    tiers, size_reason = choose_pack(candidates, shared_bytes + commands)
    about = {
        "measured_on": cpu_name(),
        "evaluation": f"{builder.held_out_identities} held-out LFW identities "
        f"({len(builder.eval_set.people)} faces, {len(builder.eval_set.pairs)} pairs); "
        f"calibration on {builder.calibration_identities} other identities; door on all "
        f"{len(set(builder.all_people))} identities; {builder.left_out} mislabeled photo(s) "
        "left out (eval/label_errors.txt)",
    }
    write_pack(staging, tiers, shared, about)
    add_proposer(staging, reference_dir)  # without frames: measured later, add-proposer --frames
    door = _door_frames(staging, reference_dir, frames, evaldata, tiers) if frames else {}
    notices = write_notice(staging, list(dict.fromkeys(c.source for c in tiers.values())))
    total = pack_bytes(staging) + commands + sum(p.stat().st_size for p in notices)
    if total > MAX_PACK_BYTES_WITH_REASON:
        raise ToolError(
            f"the pack is {total:,d} bytes, over the {MAX_PACK_BYTES_WITH_REASON:,d} limit"
        )
    old_files = [out / "manifest.json", out / "shared", out / NOTICE_NAME, out / LICENSE_DIR]
    for old in [*old_files, *out.glob("embedder_*")]:
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
        "goals": check_goals(tiers),
        "bytes": total,
        "size_reason": size_reason,
        "about": about,
        "door_frames": door,
    }


def _door_frames(
    staging: Path, reference: Path, frames: Path, evaldata: Path, tiers: dict[str, Candidate]
) -> dict[str, dict[str, Any]]:
    """Measure detection and calibrate the door on ``frames``; tiers' metrics follow the door."""
    from tools.compact.evaluate.labels import LABEL_ERRORS, read_label_errors
    from tools.compact.pack.door_frames import calibrate_door
    from tools.compact.pack.proposer import add_proposer, door_frames, measure_tiers

    add_proposer(staging, reference, measure_tiers(staging, door_frames(frames)))
    door = calibrate_door(staging, frames, evaldata / "faces", read_label_errors(LABEL_ERRORS))
    for tier, candidate in tiers.items():  # a model on several tiers: its worst door
        for key in ("unlock_threshold", "door_tar", "door_tar_onnxruntime", "door_tar_ncnn"):
            shared = [door[t][key] for t, c in tiers.items() if c is candidate]
            candidate.metrics[key] = min(shared)
        candidate.metrics["door_calibration"] = door[tier]["door_calibration"]
    return door

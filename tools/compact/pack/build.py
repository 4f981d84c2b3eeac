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
   files from the same graph: int8 convolutions (:mod:`.ncnn_int8`) when they cost no
   accuracy and are faster, else 8-bit codebook weights when they cost no accuracy, else
   fp16; latency on both backends (1 thread); verification accuracy on held-out pairs;
   identification TAR/FAR with half the held-out people as impostors.
4. Baselines in the same run: the fp32 reference and onnxruntime's plain ``quantize_static``
   on onnxruntime, the unpruned fp32 net on ncnn (with the fastest fp32 settings found:
   winograd off on the widest convolutions, no 4x3 winograd); the goals checked.
5. Tiers chosen by fixed rules (:func:`choose_tiers`); thresholds calibrated per tier.
6. The pack (``custom_components/compact_ai/models``), ``docs/model-report.md`` and a Pareto plot.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from custom_components.compact_ai.engine.face.gallery import Gallery, MatchStatus
from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from tools.compact.errors import ToolError
from tools.compact.evaluate.verify import best_threshold, cross_validated_accuracy, threshold_at_far
from tools.compact.paths import EVALDATA_DIR, PACK_DIR, REPO_ROOT

TIERS = ("accurate", "balanced", "fast")
MAX_PACK_BYTES = 30_000_000  # "30 MB": decimal, the stricter reading
EMBEDDER = "face_embedder"
FAR_DETECTOR = "face_detector_full"
SHARED_TASKS = ("face_detector", "face_detector_full", "speech_mel", "speech_embedding")
MEL_INPUT = "serving_default_input:0"
DEFAULT_TARGETS = (1.0, 0.9, 0.8, 0.65)
NCNN_FP32_OPTIONS = {"use_winograd43_convolution": False}
NCNN_INT8_OPTIONS: dict[str, Any] = {}
NCNN_MAX_LOSS = 0.002  # ncnn int8 or codebook weights are kept unless they cost more accuracy
COMMANDS_DIR = "commands"
TIMING_ROUNDS = 20
TIMING_RUNS = 5  # per model and round
PAIRS_PER_CLASS = 1500
BALANCED_LOSS = 0.005  # at most 0.5 pt below the fp32 net
FAST_LOSS = 0.015  # fast may lose 1.5 pt, but only when it runs in 0.3x the fp32 net's time
FAST_FRACTION = 0.3
QUANTIZE_EVERY = 4  # int8 ranges settle on a quarter of the calibration chips (4x faster)


@dataclass
class Candidate:
    """One face-embedder variant and what it measured."""

    name: str
    flops_target: float
    fp32: onnx.ModelProto
    int8: onnx.ModelProto | None = None
    onnx_bytes: bytes = b""
    param: bytes = b""
    weights: bytes = b""
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    runners: dict[str, Any] = field(default_factory=dict)  # backend -> loaded model

    @property
    def size(self) -> int:
        """Bytes shipped for both backends."""
        return len(self.onnx_bytes) + len(self.param) + len(self.weights)


@dataclass(frozen=True)
class NcnnFiles:
    """An ncnn ``.param`` / ``.bin`` pair and the options to run it with."""

    param: bytes
    weights: bytes
    options: dict[str, Any]


def tuned(param: bytes, weights: bytes, *, int8: bool) -> NcnnFiles:
    """Files with the fastest settings found for their arithmetic (see :mod:`.ncnn_int8`)."""
    from tools.compact.ncnn.int8 import WINOGRAD_LIMIT_FP32, WINOGRAD_LIMIT_INT8, winograd_off

    if int8:
        return NcnnFiles(winograd_off(param, WINOGRAD_LIMIT_INT8), weights, NCNN_INT8_OPTIONS)
    return NcnnFiles(winograd_off(param, WINOGRAD_LIMIT_FP32), weights, NCNN_FP32_OPTIONS)


@dataclass
class NcnnChoice:
    """The ncnn files chosen for a candidate, and what every kind tried measured."""

    kind: str  # "int8", "8-bit codebook" or "fp16"
    files: NcnnFiles
    io: dict[str, Any]
    measured: dict[str, dict[str, float]]  # kind -> lfw_accuracy and ms
    model: NcnnModel
    embeddings: np.ndarray

    @property
    def accuracy(self) -> float:
        """Return the held-out verification accuracy of the chosen files."""
        return self.measured[self.kind]["lfw_accuracy"]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    num = (a * b).sum(axis=1)
    return float(np.min(num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))


def _embed(model: Any, chips: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [model.run({"chip": chips[i : i + 16]})[0] for i in range(0, len(chips), 16)]
    )


def interleaved_ms(
    runs: dict[str, Any], rounds: int = TIMING_ROUNDS, per_round: int = TIMING_RUNS
) -> dict[str, float]:
    """Best wall time (ms) of each callable, taken in turns so that all see the same load.

    On a shared machine the fastest run is the one not slowed; measuring every model in each
    round keeps a busy spell from favouring the ones timed before or after it.
    """
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run()
                best[name] = min(best[name], (time.perf_counter() - start) * 1000)
    return best


@dataclass(frozen=True)
class EvalSet:
    """Held-out chips with their identities, and the pairs drawn from them."""

    chips: np.ndarray
    people: list[str]
    pairs: list[tuple[int, int, bool]]


def make_eval_set(chips: np.ndarray, people: list[str], seed: int) -> EvalSet:
    """Draw same/different pairs from held-out chips (deterministic)."""
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[int]] = {}
    for index, person in enumerate(people):
        by_person.setdefault(person, []).append(index)
    names = sorted(p for p, idx in by_person.items() if len(idx) >= 2)
    possible = sum(len(by_person[n]) * (len(by_person[n]) - 1) // 2 for n in names)
    per_class = min(PAIRS_PER_CLASS, possible)
    same: set[tuple[int, int, bool]] = set()
    different: set[tuple[int, int, bool]] = set()
    while len(same) < per_class:
        person = names[rng.integers(len(names))]
        i, j = sorted(rng.choice(by_person[person], 2, replace=False).tolist())
        same.add((i, j, True))
    while len(different) < per_class:
        a, b = rng.choice(len(names), 2, replace=False)
        i = int(rng.choice(by_person[names[a]]))
        j = int(rng.choice(by_person[names[b]]))
        different.add((min(i, j), max(i, j), False))
    return EvalSet(chips, people, sorted(same) + sorted(different))


def verification(embeddings: np.ndarray, eval_set: EvalSet) -> dict[str, float]:
    """Accuracy (10-fold best threshold) and calibrated thresholds from the held-out pairs."""
    i, j, same = (np.array(column) for column in zip(*eval_set.pairs, strict=True))
    distances = np.linalg.norm(embeddings[i] - embeddings[j], axis=1)
    same = same.astype(bool)
    return {
        "lfw_accuracy": round(cross_validated_accuracy(distances, same), 4),
        "best_threshold": round(best_threshold(distances, same), 4),
        "threshold_far_0_1": round(threshold_at_far(distances, same, 0.001), 4),
    }


def identification(
    embeddings: np.ndarray, people: list[str], threshold: float, enroll: int = 3
) -> dict[str, float]:
    """TAR/FAR with ``enroll`` faces per person for half the people; the rest are impostors."""
    names = sorted(set(people))
    known = set(names[: len(names) // 2])
    gallery = Gallery(threshold)
    seen: dict[str, int] = {}
    probes = []
    for index, person in enumerate(people):
        if person in known and seen.get(person, 0) < enroll:
            gallery.add(person, embeddings[index])
            seen[person] = seen.get(person, 0) + 1
        else:
            probes.append(index)
    accepted_right = accepted_impostor = known_probes = impostor_probes = 0
    for index in probes:
        match = gallery.match(embeddings[index])
        if people[index] in known:
            known_probes += 1
            accepted_right += match.status is MatchStatus.MATCH and match.person == people[index]
        else:
            impostor_probes += 1
            accepted_impostor += match.status is MatchStatus.MATCH
    return {
        "tar": round(accepted_right / max(known_probes, 1), 4),
        "far": round(accepted_impostor / max(impostor_probes, 1), 4),
    }


def unlock_threshold(embeddings: np.ndarray, people: list[str], start: float) -> float:
    """Return the largest threshold (step 0.01, at most ``start``) accepting no impostor."""
    threshold = start
    while threshold > 0.2 and identification(embeddings, people, threshold)["far"] > 0:
        threshold -= 0.01
    return round(threshold - 0.02, 2)  # a margin below the last accepted impostor


def loss(candidate: Candidate, reference: dict[str, float]) -> float:
    """Accuracy lost against the fp32 net: the worse of the backends ``reference`` names.

    ``reference`` maps an accuracy metric (``lfw_accuracy`` for onnxruntime,
    ``lfw_accuracy_ncnn``) to the fp32 net's accuracy on that backend.
    """
    return max(
        value - candidate.metrics[metric]
        for metric, value in reference.items()
        if metric in candidate.metrics
    )


def choose_tiers(
    candidates: list[Candidate],
    budget: int | None = None,
    backend: str = "onnxruntime",
    reference: dict[str, float] | None = None,
    fp32_ms: float | None = None,
) -> dict[str, Candidate]:
    """Apply the fixed tier rules (the goals of issue 5) to ``candidates``.

    accurate = best accuracy within ``budget`` bytes; balanced = fastest that loses at most
    0.5 pt; fast = fastest that loses at most 1.5 pt if it runs in at most 0.3x ``fp32_ms``,
    else the balanced rule. The loss is against ``reference`` (the fp32 net's accuracy per
    backend, see :func:`loss`); both default to the accurate pick's own. A tier whose pick
    would break the budget reuses a model already chosen (no extra bytes). Speed is the ms
    per face on ``backend``.
    """
    key = f"ms_per_face_{backend}"
    limit = budget if budget is not None else sum(c.size for c in candidates)
    fitting = [c for c in candidates if c.size <= limit]
    if not fitting:
        raise ToolError(f"no face embedder fits {limit:,d} bytes")
    accurate = max(fitting, key=lambda c: (c.metrics["lfw_accuracy"], -c.metrics[key]))
    reference = reference or {"lfw_accuracy": accurate.metrics["lfw_accuracy"]}
    fastest_allowed = FAST_FRACTION * (fp32_ms or accurate.metrics[key])
    chosen = {"accurate": accurate}

    def near(most: float, slowest: float = float("inf")) -> list[Candidate]:
        used = {id(c): c for c in chosen.values()}
        spare = limit - sum(c.size for c in used.values())
        return [
            c
            for c in candidates
            if (c is accurate or loss(c, reference) <= most + 1e-9)
            and (id(c) in used or c.size <= spare)
            and c.metrics[key] <= slowest
        ]

    def quickest(found: list[Candidate]) -> Candidate:
        return min(found, key=lambda c: (c.metrics[key], -c.metrics["lfw_accuracy"]))

    chosen["balanced"] = quickest(near(BALANCED_LOSS))
    chosen["fast"] = quickest(near(FAST_LOSS, fastest_allowed) or near(BALANCED_LOSS))
    return chosen


def _chips(paths: list[Path], chipper: Any) -> tuple[np.ndarray, list[str]]:
    from PIL import Image

    chips, people = [], []
    for path in paths:
        found = chipper.chips(np.asarray(Image.open(path).convert("RGB")), 1)
        if found:
            chips.append(found[0])
            people.append(path.parent.name)
    return np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32), people


class Builder:
    """Builds candidates and measures them against one held-out set."""

    def __init__(self, evaldata: Path, seed: int, progress: bool) -> None:
        """Prepare calibration and evaluation chips from ``evaldata/faces``."""
        from tools.compact.compress.calibration import (
            FaceChipper,
            face_chips,
            files,
            split_by_identity,
        )
        from tools.compact.pack.reference import build_reference_pack

        self.reference = build_reference_pack() / "reference"
        self.seed = seed
        self.progress = progress
        photos = files(evaldata / "faces", (".jpg",))
        calibrate, held_out = split_by_identity(photos)
        chipper = FaceChipper()
        # Every photo of every calibration identity: the late layers' least-squares fits
        # need many samples (a first 128 chips covered only 5 people and lost 2 pt at 0.5).
        self.calibration = face_chips(calibrate, per_image=2, jitter=0.05, chipper=chipper)
        chips, people = _chips(held_out, chipper)
        self.eval_set = make_eval_set(chips, people, seed)
        # The door's distance is set on every identity (the acceptance protocol: 3 faces
        # enrolled per person for half the people, the other half impostors): no impostor
        # may be accepted there.
        calibration_chips, calibration_people = _chips(calibrate, chipper)
        self.all_chips = np.concatenate([calibration_chips, chips])
        self.all_people = calibration_people + people
        self.timing_chip = chips[:1]
        self.calibration_identities = len({p.parent for p in calibrate})
        self.held_out_identities = len(set(people))

    def feeds(self, every: int = 1) -> list[dict[str, np.ndarray]]:
        """Calibration batches for the embedder's input, of every ``every``-th chip."""
        from tools.compact.compress.calibration import batches

        return batches("chip", self.calibration[::every], 8)

    def measure_onnx(
        self, model: onnx.ModelProto
    ) -> tuple[dict[str, float], np.ndarray, OnnxruntimeModel]:
        """Accuracy metrics, embeddings and the loaded (1 thread) ONNX embedder."""
        runner = OnnxruntimeModel(model.SerializeToString(), name="candidate")
        embeddings = _embed(runner, self.eval_set.chips)
        return verification(embeddings, self.eval_set), embeddings, runner

    def finish(self, candidate: Candidate) -> Candidate:
        """Quantize where it pays, export ncnn, and measure both backends."""
        from tools.compact.compress.measure import flops, parameter_count
        from tools.compact.compress.quantize import decide, preprocess, search

        fp32 = candidate.fp32
        feeds = self.feeds(QUANTIZE_EVERY)
        choice = search(fp32, feeds, feeds[:4], progress=self.progress)
        int8 = choice.model
        decision = decide(preprocess(fp32), int8, {"chip": self.timing_chip}, prefer_size=True)
        shipped = int8 if decision.keep_int8 else fp32
        candidate.onnx_bytes = shipped.SerializeToString()
        verify, embeddings, ort_runner = self.measure_onnx(shipped)
        ncnn_choice = self.choose_ncnn(fp32)
        candidate.param, candidate.weights = ncnn_choice.files.param, ncnn_choice.files.weights
        candidate.config = {**ncnn_choice.io, "ncnn": dict(ncnn_choice.files.options)}
        ncnn, ncnn_embeddings = ncnn_choice.model, ncnn_choice.embeddings
        door_limit = min(
            unlock_threshold(_embed(model, self.all_chips), self.all_people, 1.0)
            for model in (ort_runner, ncnn)
        )
        candidate.runners = {"onnxruntime": ort_runner, "ncnn": ncnn}
        threshold = verify["threshold_far_0_1"]
        candidate.metrics = {
            **verify,
            "lfw_accuracy_ncnn": ncnn_choice.accuracy,
            "lfw_accuracy_ncnn_fp16": ncnn_choice.measured["fp16"]["lfw_accuracy"],
            "ncnn_weights": ncnn_choice.kind,
            "ncnn_weights_measured": ncnn_choice.measured,
            "int8_calibration": choice.method,
            "int8_float_nodes": list(choice.excluded),
            "flops": flops(fp32, {"chip": self.timing_chip}),
            "parameters": parameter_count(fp32),
            "int8": decision.reason,
            "backend_cosine": round(_cosine(embeddings, ncnn_embeddings), 6),
            **identification(embeddings, self.eval_set.people, threshold),
            "unlock_threshold": min(door_limit, round(threshold - 0.02, 2)),
        }
        candidate.int8 = int8 if decision.keep_int8 else None
        return candidate

    def export_ncnn(
        self, model: onnx.ModelProto, fp16: bool
    ) -> tuple[bytes, bytes, dict[str, Any]]:
        """Return the ncnn ``.param`` and ``.bin`` bytes of an embedder, and its io config."""
        from tools.compact.ncnn.export import export_ncnn, io_config

        with tempfile.TemporaryDirectory(prefix="candidate_") as tmp:
            path = Path(tmp) / "face_embedder.onnx"
            onnx.save(model, path)
            param, weights = export_ncnn(path, Path(tmp), fp16=fp16)
            return param.read_bytes(), weights.read_bytes(), io_config(model)

    def measure_ncnn(
        self, files: NcnnFiles, io: dict[str, Any]
    ) -> tuple[float, NcnnModel, np.ndarray]:
        """Held-out verification accuracy of ncnn files, their model (1 thread), embeddings."""
        model = NcnnModel(
            files.param,
            files.weights,
            name=EMBEDDER,
            inputs=tensor_specs(io, "inputs", EMBEDDER),
            outputs=tensor_specs(io, "outputs", EMBEDDER),
            options=NcnnOptions.from_config(files.options),
        )
        embeddings = _embed(model, self.eval_set.chips)
        return verification(embeddings, self.eval_set)["lfw_accuracy"], model, embeddings

    def choose_ncnn(self, model: onnx.ModelProto) -> NcnnChoice:
        """Export ``model`` to ncnn and pick its weights: int8, 8-bit codebook or fp16.

        int8 wins if it loses at most :data:`NCNN_MAX_LOSS` against fp16 and is faster than
        the fp32-arithmetic files; the codebook if it loses at most as much; else fp16.
        """
        from tools.compact.ncnn.codebook import codebook_weights
        from tools.compact.ncnn.int8 import input_scales, int8_files

        param, fp16_weights, io = self.export_ncnn(model, fp16=True)
        blob = str(tensor_specs(io, "inputs", EMBEDDER)[0].ncnn_blob)
        scales = input_scales(param, fp16_weights, blob, self.calibration)
        tried = {
            "fp16": tuned(param, fp16_weights, int8=False),
            "8-bit codebook": tuned(param, codebook_weights(param, fp16_weights), int8=False),
            "int8": tuned(*int8_files(param, fp16_weights, scales), int8=True),
        }
        runs = {kind: self.measure_ncnn(files, io) for kind, files in tried.items()}
        accuracy = {kind: run[0] for kind, run in runs.items()}
        feed = {"chip": self.timing_chip}
        ms = interleaved_ms(
            {kind: (lambda m=run[1]: m.run(feed)) for kind, run in runs.items()}, rounds=5
        )
        lowest = accuracy["fp16"] - NCNN_MAX_LOSS
        kind = "8-bit codebook" if accuracy["8-bit codebook"] >= lowest else "fp16"
        if accuracy["int8"] >= lowest and ms["int8"] < ms[kind]:
            kind = "int8"
        measured = {k: {"lfw_accuracy": accuracy[k], "ms": round(ms[k], 2)} for k in tried}
        return NcnnChoice(kind, tried[kind], io, measured, runs[kind][1], runs[kind][2])

    def baselines(
        self, reference: onnx.ModelProto
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """fp32 and plain int8 (quantize_static defaults) on onnxruntime, fp32 on ncnn.

        Returns their accuracy rows and their loaded models (timed with the candidates).
        """
        from tools.compact.compress.quantize import preprocess, quantize_int8

        fp32_verify, _, fp32 = self.measure_onnx(reference)
        plain_model = quantize_int8(preprocess(reference), self.feeds(), plain=True)
        plain_verify, _, plain = self.measure_onnx(plain_model)
        param, weights, io = self.export_ncnn(reference, fp16=False)
        ncnn_accuracy, ncnn, _ = self.measure_ncnn(tuned(param, weights, int8=False), io)
        ort = "onnxruntime"
        rows = {
            "fp32 reference": {"backend": ort, "lfw_accuracy": fp32_verify["lfw_accuracy"]},
            "plain int8": {"backend": ort, "lfw_accuracy": plain_verify["lfw_accuracy"]},
            "ncnn fp32": {"backend": "ncnn", "lfw_accuracy": ncnn_accuracy},
        }
        return rows, {"fp32 reference": fp32, "plain int8": plain, "ncnn fp32": ncnn}

    def time_all(
        self,
        candidates: list[Candidate],
        baselines: dict[str, dict[str, Any]],
        runners: dict[str, Any],
    ) -> None:
        """Time every candidate (both backends) and baseline in turns; store the ms."""
        feed = {"chip": self.timing_chip}
        runs = {name: (lambda m=model: m.run(feed)) for name, model in runners.items()}
        for c in candidates:
            for backend, model in c.runners.items():
                runs[f"{c.name}/{backend}"] = lambda m=model: m.run(feed)
        best = interleaved_ms(runs)
        for name, row in baselines.items():
            row["ms"] = round(best[name], 2)
        for c in candidates:
            for backend in c.runners:
                c.metrics[f"ms_per_face_{backend}"] = round(best[f"{c.name}/{backend}"], 2)


# (tier, backend, baseline, speed-up at least, accuracy loss at most) from issue 5
GOALS = (
    ("balanced", "onnxruntime", "plain int8", 1.5, BALANCED_LOSS),
    ("fast", "onnxruntime", "plain int8", 1.5, BALANCED_LOSS),
    ("fast", "onnxruntime", "fp32 reference", 1 / FAST_FRACTION, FAST_LOSS),
    ("balanced", "ncnn", "ncnn fp32", 1.5, BALANCED_LOSS),
    ("fast", "ncnn", "ncnn fp32", 1.5, BALANCED_LOSS),
    ("fast", "ncnn", "ncnn fp32", 1 / FAST_FRACTION, FAST_LOSS),
)


def check_goals(
    tiers: dict[str, Candidate], baselines: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each goal of :data:`GOALS` with the tier's measured speed-up and accuracy loss.

    The loss is against the fp32 net on the same backend (the reference on onnxruntime).
    """
    reference = {"onnxruntime": "fp32 reference", "ncnn": "ncnn fp32"}
    rows = []
    for tier, backend, baseline, speedup, loss in GOALS:
        metrics = tiers[tier].metrics
        suffix = "" if backend == "onnxruntime" else "_ncnn"
        measured_speedup = baselines[baseline]["ms"] / metrics[f"ms_per_face_{backend}"]
        measured_loss = (
            baselines[reference[backend]]["lfw_accuracy"] - metrics[f"lfw_accuracy{suffix}"]
        )
        rows.append(
            {
                "tier": tier,
                "backend": backend,
                "baseline": baseline,
                "speedup": round(measured_speedup, 2),
                "loss": round(measured_loss, 4),
                "goal": f">= {speedup:.2f}x, <= {loss * 100:.1f} pt",
                "met": measured_speedup >= speedup and measured_loss <= loss + 1e-9,
            }
        )
    return rows


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
            if tier == "fast" and task == FAR_DETECTOR:
                continue  # fast scans with the near (doorbell-distance) detector only
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
        print(f"{candidate.name}: {json.dumps(candidate.metrics, sort_keys=True)}", flush=True)
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


def pareto_plot(path: Path, report: dict[str, Any]) -> None:
    """Draw latency (onnxruntime, 1 thread) against accuracy for every candidate and baseline."""
    from PIL import Image, ImageDraw

    width, height, margin = 720, 420, 60
    points = [
        (c.name, c.metrics["ms_per_face_onnxruntime"], c.metrics["lfw_accuracy"])
        for c in report["candidates"]
    ]
    points += [
        (name, m["ms"], m["lfw_accuracy"])
        for name, m in report["baselines"].items()
        if m["backend"] == "onnxruntime"
    ]
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 0.005, max(ys) + 0.003

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            margin + (x - x0) / (x1 - x0) * (width - 2 * margin),
            height - margin - (y - y0) / (y1 - y0) * (height - 2 * margin),
        )

    image = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(image)
    pen.line([at(x0, y0), at(x1, y0)], fill="black")
    pen.line([at(x0, y0), at(x0, y1)], fill="black")
    pen.text((width / 2 - 90, height - 30), "ms per face (onnxruntime, 1 thread)", fill="black")
    pen.text((5, 10), "verification accuracy (held-out pairs)", fill="black")
    for tick in np.linspace(y0, y1, 5):
        x, y = at(x0, float(tick))
        pen.text((5, y - 6), f"{tick:.3f}", fill="gray")
    for tick in np.linspace(x0, x1, 6):
        x, y = at(float(tick), y0)
        pen.text((x - 8, y + 6), f"{tick:.1f}", fill="gray")
    chosen: dict[str, str] = {}
    for tier, c in report["tiers"].items():
        chosen[c.name] = f"{chosen[c.name]}, {tier}" if c.name in chosen else tier
    for name, x, y in points:
        cx, cy = at(x, y)
        color = "red" if name in chosen else ("gray" if name in report["baselines"] else "blue")
        pen.ellipse((cx - 5, cy - 5, cx + 5, cy + 5), fill=color)
        label = f"{name} ({chosen[name]})" if name in chosen else name
        pen.text((cx + 8, cy - 6), label, fill=color)
    image.save(path)


def _measured_cells(c: Candidate) -> list[str]:
    """Return size, accuracy (ORT, ncnn) and ms per face (ORT, ncnn) of a candidate."""
    m = c.metrics
    return [
        f"{c.size / 1e6:.1f} MB",
        f"{m['lfw_accuracy']:.2%}",
        f"{m['lfw_accuracy_ncnn']:.2%}",
        f"{m['ms_per_face_onnxruntime']:.1f}",
        f"{m['ms_per_face_ncnn']:.1f}",
    ]


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write docs/model-report.md: candidates, chosen tiers and baselines from one run."""
    lines = [
        "# Model report",
        "",
        "Written by `python -m tools.compact build-pack`. Every number below comes from one",
        f"run on one machine ({report['about']['measured_on']}), 1 thread;",
        f"{report['about']['evaluation']}.",
        "",
        "## Face embedder candidates",
        "",
        "| candidate | FLOPs | params | bytes (ORT + ncnn) | accuracy ORT | accuracy ncnn "
        "| ms ORT | ms ncnn | TAR / FAR @ threshold | unlock threshold | int8 | ncnn weights |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report["candidates"]:
        m = c.metrics
        cells = [
            c.name,
            f"{m['flops'] / 1e6:.0f} M",
            f"{m['parameters'] / 1e6:.2f} M",
            *_measured_cells(c),
            f"{m['tar']:.1%} / {m['far']:.1%} @ {m['threshold_far_0_1']:.3f}",
            f"{m['unlock_threshold']:.2f}",
            f"{m['int8']} ({m['int8_calibration']}, float: "
            f"{', '.join(m['int8_float_nodes']) or 'none'})",
            f"**{m['ncnn_weights']}** (tried: "
            + ", ".join(
                f"{kind} {tried['lfw_accuracy']:.2%} {tried['ms']:.1f} ms"
                for kind, tried in m["ncnn_weights_measured"].items()
            )
            + ")",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Baselines (same run, unpruned embedder)",
        "",
        "| model | backend | accuracy | ms |",
        "|---|---|---|---|",
    ]
    for name, m in report["baselines"].items():
        lines.append(f"| {name} | {m['backend']} | {m['lfw_accuracy']:.2%} | {m['ms']:.1f} |")
    lines += [
        "",
        "## Tiers",
        "",
        "| tier | embedder | size | accuracy ORT | accuracy ncnn | ms ORT | ms ncnn | TAR / FAR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tier, c in report["tiers"].items():
        m = c.metrics
        cells = [
            tier,
            c.name,
            *_measured_cells(c),
            f"{m['tar']:.1%} / {m['far']:.1%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Goals of issue 5",
        "",
        "Speed-up over the baseline, accuracy loss against the fp32 net on the same backend.",
        "",
        "| tier | backend | baseline | goal | speed-up | loss | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in report["goals"]:
        cells = [
            g["tier"],
            g["backend"],
            g["baseline"],
            g["goal"],
            f"{g['speedup']:.2f}x",
            f"{g['loss'] * 100:+.2f} pt",
            "yes" if g["met"] else "no",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Pack size: {report['bytes'] / 1e6:.1f} MB including the command set "
        f"(limit {MAX_PACK_BYTES / 1e6:.1f} MB).",
        "",
        "Rules: accurate = best accuracy within the size budget; balanced = fastest losing at",
        "most 0.5 pt against the fp32 net on either backend; fast = fastest losing at most",
        "1.5 pt if it runs in 0.3x the fp32 net's onnxruntime time, else the balanced rule",
        "(a tier reuses a chosen model when its own pick would not fit). Speed is onnxruntime's",
        "ms. ORT int8 calibrates on a quarter of the calibration chips, pruning and ncnn int8",
        "on all of them; the shared ONNX files store fp16 weights. Detectors",
        "and speech models are shared; accurate and balanced run the near and the far face",
        "detector, fast only the near one. Times: the best of "
        f"{TIMING_ROUNDS * TIMING_RUNS} runs per model, taken in turns with every other model.",
        "ncnn weights: int8 runs ncnn's integer convolution kernels (the first convolution",
        "stays fp32); 8-bit codebook or fp16 weights only shrink the file and run fp32",
        "arithmetic. The ncnn fp32 baseline runs with the fastest fp32 settings found",
        "(winograd off on the widest convolutions, no 4x3 winograd).",
        "",
        "![latency against accuracy](model-report.png)",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _run(args: argparse.Namespace) -> int:
    report = build(args.out, args.evaldata, tuple(args.targets), args.seed, not args.quiet)
    docs = REPO_ROOT / "docs"
    docs.mkdir(exist_ok=True)
    write_report(docs / "model-report.md", report)
    pareto_plot(docs / "model-report.png", report)
    print((docs / "model-report.md").read_text())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``build-pack`` subcommand."""
    parser = subparsers.add_parser(
        "build-pack", help="compress the reference models into the shipped tiers"
    )
    parser.add_argument("--out", type=Path, default=PACK_DIR)
    parser.add_argument(
        "--evaldata", type=Path, default=EVALDATA_DIR, help="folder with faces/<identity>/*.jpg"
    )
    parser.add_argument("--targets", type=float, nargs="+", default=list(DEFAULT_TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(func=_run)

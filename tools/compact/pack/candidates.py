"""Face-embedder candidates of ``build-pack``: quantized, exported to ncnn and measured.

A :class:`Builder` holds one embedder's calibration chips and held-out set, cut in the framing
that embedder wants (every embedder sees the same photos, faces and pairs); ``finish`` turns
one fp32 candidate into the files both backends ship, with every metric the tier rules and
the report need.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from tools.compact.evaluate.labels import LABEL_ERRORS, listed, read_label_errors
from tools.compact.pack.embedders import SOURCES, EmbedderSource
from tools.compact.pack.heldout import (
    embed,
    identification,
    interleaved_ms,
    make_eval_set,
    min_cosine,
    unlock_threshold,
    verification,
)

EMBEDDER = "face_embedder"
NCNN_FP32_OPTIONS = {"use_winograd43_convolution": False}
NCNN_INT8_OPTIONS: dict[str, Any] = {}
NCNN_MAX_LOSS = 0.002  # ncnn int8 or codebook weights are kept unless they cost more accuracy
QUANTIZE_EVERY = 4  # int8 ranges settle on a quarter of the calibration chips (4x faster)
PIXELS = (0.0, 255.0)  # what every embedder's input holds


@dataclass
class Candidate:
    """One face-embedder variant and what it measured."""

    name: str
    flops_target: float
    fp32: onnx.ModelProto
    source: EmbedderSource = SOURCES["dlib"]
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
    """Files with the fastest settings found for their arithmetic (see ``ncnn/int8.py``)."""
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

    def __init__(
        self, evaldata: Path, seed: int, progress: bool, source: EmbedderSource = SOURCES["dlib"]
    ) -> None:
        """Prepare ``source``'s calibration and evaluation chips from ``evaldata/faces``."""
        from tools.compact.compress.calibration import (
            FaceChipper,
            face_chips,
            files,
            split_by_identity,
        )
        from tools.compact.pack.reference import build_reference_pack

        self.source = source
        self.reference = build_reference_pack() / source.tier / "face_embedder.onnx"
        self.seed = seed
        self.progress = progress
        errors = read_label_errors(LABEL_ERRORS)
        every = files(evaldata / "faces", (".jpg",))
        photos = [p for p in every if not listed(p, errors)]
        self.photos = photos
        self.left_out = len(every) - len(photos)  # filed under the wrong person
        calibrate, held_out = split_by_identity(photos)
        chipper = FaceChipper(alignment=source.alignment)
        # Every photo of every calibration identity: the late layers' least-squares fits
        # need many samples (a first 128 chips covered only 5 people and lost 2 pt at 0.5).
        self.calibration = face_chips(calibrate, per_image=2, jitter=0.05, chipper=chipper)
        chips, people = _chips(held_out, chipper)
        self.eval_set = make_eval_set(chips, people, seed)
        # The door's distance is set on every identity (the acceptance protocol: 3 faces
        # enrolled per person for the first half of the people, the others impostors): no
        # impostor may be accepted there.
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

    def embed(self, model: Any, chips: np.ndarray) -> np.ndarray:
        """Embeddings of ``chips`` as the engine compares them (normalized for SFace)."""
        embeddings = embed(model, chips)
        if self.source.normalize:
            embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
        return embeddings

    def measure_onnx(
        self, model: onnx.ModelProto
    ) -> tuple[dict[str, float], np.ndarray, OnnxruntimeModel]:
        """Accuracy metrics, embeddings and the loaded (1 thread) ONNX embedder."""
        runner = OnnxruntimeModel(model.SerializeToString(), name="candidate")
        embeddings = self.embed(runner, self.eval_set.chips)
        return verification(embeddings, self.eval_set), embeddings, runner

    def door(self, models: dict[str, Any], start: float) -> dict[str, float]:
        """Return the unlock distance no dev impostor passes on any backend, owners' TAR there.

        Starts at ``start`` (the naming threshold) and steps down; the owners' TAR is per
        frame, with the identify protocol (3 faces enrolled for half the people).
        """
        embeddings = {name: self.embed(model, self.all_chips) for name, model in models.items()}
        limit = min(unlock_threshold(e, self.all_people, start) for e in embeddings.values())
        door = {"unlock_threshold": limit}
        for name, values in embeddings.items():
            door[f"door_tar_{name}"] = identification(values, self.all_people, limit)["tar"]
        door["door_tar"] = min(door[f"door_tar_{name}"] for name in embeddings)
        return door

    def finish(self, candidate: Candidate) -> Candidate:
        """Quantize where it pays, export ncnn, and measure both backends."""
        from tools.compact.compress.measure import flops, parameter_count
        from tools.compact.compress.passes import prelu_as_relu
        from tools.compact.compress.quantize import decide, preprocess, search

        fp32 = candidate.fp32
        ort_fp32 = prelu_as_relu(fp32)  # onnxruntime's PRelu is slow (no-op for dlib's net)
        feeds = self.feeds(QUANTIZE_EVERY)
        choice = search(ort_fp32, feeds, feeds[:4], progress=self.progress)
        int8 = choice.model
        decision = decide(preprocess(ort_fp32), int8, {"chip": self.timing_chip}, prefer_size=True)
        shipped = int8 if decision.keep_int8 else ort_fp32
        candidate.onnx_bytes = shipped.SerializeToString()
        verify, embeddings, ort_runner = self.measure_onnx(shipped)
        ncnn_choice = self.choose_ncnn(fp32)
        candidate.param, candidate.weights = ncnn_choice.files.param, ncnn_choice.files.weights
        candidate.config = {
            **ncnn_choice.io,
            "ncnn": dict(ncnn_choice.files.options),
            **self.source.config(),
        }
        ncnn, ncnn_embeddings = ncnn_choice.model, ncnn_choice.embeddings
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
            "backend_cosine": round(min_cosine(embeddings, ncnn_embeddings), 6),
            **identification(embeddings, self.eval_set.people, threshold),
            **self.door(candidate.runners, threshold),
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
            # checked on pixel-valued noise: SFace's fp16 weights on standard-normal input
            # (a near-black chip) agree to a cosine of 0.9988 only, on pixels to 0.9999
            param, weights = export_ncnn(path, Path(tmp), fp16=fp16, input_range=PIXELS)
            return param.read_bytes(), weights.read_bytes(), io_config(model)

    def measure_ncnn(
        self, files: NcnnFiles, io: dict[str, Any]
    ) -> tuple[float, NcnnModel, np.ndarray]:
        """Held-out verification accuracy of ncnn files, their model (1 thread), embeddings."""
        model = ncnn_embedder(files.param, files.weights, io, files.options)
        embeddings = self.embed(model, self.eval_set.chips)
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
            {kind: partial(run[1].run, feed) for kind, run in runs.items()}, rounds=5
        )
        lowest = accuracy["fp16"] - NCNN_MAX_LOSS
        kind = "8-bit codebook" if accuracy["8-bit codebook"] >= lowest else "fp16"
        if accuracy["int8"] >= lowest and ms["int8"] < ms[kind]:
            kind = "int8"
        measured = {k: {"lfw_accuracy": accuracy[k], "ms": round(ms[k], 2)} for k in tried}
        return NcnnChoice(kind, tried[kind], io, measured, runs[kind][1], runs[kind][2])

    def baselines(self) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """Measure the source net as imported: fp32, plain int8 (onnxruntime) and ncnn fp32.

        Plain int8 is onnxruntime's ``quantize_static`` with its defaults. Rows are named
        ``<source> fp32`` and so on; returns them and their loaded models (timed with the
        candidates).
        """
        from tools.compact.compress.quantize import preprocess, quantize_int8

        reference = onnx.load(self.reference)
        fp32_verify, _, fp32 = self.measure_onnx(reference)
        plain_model = quantize_int8(preprocess(reference), self.feeds(), plain=True)
        plain_verify, _, plain = self.measure_onnx(plain_model)
        param, weights, io = self.export_ncnn(reference, fp16=False)
        ncnn_accuracy, ncnn, _ = self.measure_ncnn(tuned(param, weights, int8=False), io)
        ort, name = "onnxruntime", self.source.name
        rows: dict[str, dict[str, Any]] = {
            f"{name} fp32": {"backend": ort, "lfw_accuracy": fp32_verify["lfw_accuracy"]},
            f"{name} plain int8": {"backend": ort, "lfw_accuracy": plain_verify["lfw_accuracy"]},
            f"{name} ncnn fp32": {"backend": "ncnn", "lfw_accuracy": ncnn_accuracy},
        }
        for row in rows.values():
            row["source"] = name
        models = {f"{name} fp32": fp32, f"{name} plain int8": plain, f"{name} ncnn fp32": ncnn}
        return rows, models

    def timing_feed(self) -> dict[str, np.ndarray]:
        """Return the chip every model of this source is timed on (the first held-out face)."""
        return {"chip": self.timing_chip}


def load_runners(candidate: Candidate) -> dict[str, Any]:
    """Load a candidate's shipped files on both backends (1 thread)."""
    config = candidate.config
    ncnn = ncnn_embedder(candidate.param, candidate.weights, config, config.get("ncnn", {}))
    return {"onnxruntime": OnnxruntimeModel(candidate.onnx_bytes, name=EMBEDDER), "ncnn": ncnn}


def time_all(
    candidates: list[Candidate],
    baselines: dict[str, dict[str, Any]],
    runners: dict[str, Any],
    feeds: dict[str, dict[str, np.ndarray]],
) -> None:
    """Time every candidate (both backends) and baseline in turns; store the ms.

    ``feeds`` holds each source's timing chip (by source name; a baseline row names its
    source), so every model runs on the same face in its own framing.
    """
    runs: dict[str, Callable[[], object]] = {
        name: partial(model.run, feeds[baselines[name]["source"]])
        for name, model in runners.items()
    }
    for c in candidates:
        c.runners = c.runners or load_runners(c)
        for backend, model in c.runners.items():
            runs[f"{c.name}/{backend}"] = partial(model.run, feeds[c.source.name])
    best = interleaved_ms(runs)
    for name, row in baselines.items():
        row["ms"] = round(best[name], 2)
    for c in candidates:
        for backend in c.runners:
            c.metrics[f"ms_per_face_{backend}"] = round(best[f"{c.name}/{backend}"], 2)


def ncnn_embedder(
    param: bytes, weights: bytes, io: dict[str, Any], options: dict[str, Any]
) -> NcnnModel:
    """Load embedder files on ncnn with their tensor names (``io``) and options, 1 thread."""
    return NcnnModel(
        param,
        weights,
        name=EMBEDDER,
        inputs=tensor_specs(io, "inputs", EMBEDDER),
        outputs=tensor_specs(io, "outputs", EMBEDDER),
        options=NcnnOptions.from_config(options),
    )

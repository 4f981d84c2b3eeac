"""``prune``, ``quantize`` and ``evaluate``: compress an ONNX model with calibration data.

The calibration folder is split by identity (sub-folder): the first 30 % calibrate, the rest
evaluate, so that the printed fidelity is measured on data the compression never saw. A face
embedder (input [N, 3, 150, 150]) gets engine-aligned face chips, another image model resized
photos, an audio model ([N, samples]) fixed-length windows of the WAV files.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from tools.compact.compress.graph import Feed, Graph, first_sample
from tools.compact.errors import ToolError


@dataclass
class Data:
    """Calibration and evaluation feeds for one model."""

    calibration: list[Feed]
    evaluation: list[Feed]


def _input_shape(model: onnx.ModelProto) -> tuple[str, list[int | str]]:
    view = Graph(model)
    if len(view.input_names) != 1:
        raise ToolError("only models with one input are supported")
    (value,) = [v for v in model.graph.input if v.name == view.input_names[0]]
    dims = [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
    return value.name, dims


def _images(paths: list[Path], dims: list[int | str], low: float, high: float) -> np.ndarray:
    nchw = dims[1] == 3
    height, width = (dims[2], dims[3]) if nchw else (dims[1], dims[2])
    if not isinstance(height, int) or not isinstance(width, int):
        raise ToolError("the image input needs a fixed height and width")
    arrays = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, np.float32) / 255 * (high - low) + low
        arrays.append(pixels.transpose(2, 0, 1) if nchw else pixels)
    return np.stack(arrays)


def load_data(model: onnx.ModelProto, args: argparse.Namespace) -> Data:
    """Calibration and evaluation feeds for ``model`` from ``args.calib``."""
    from tools.compact.compress import calibration as cal

    name, dims = _input_shape(model)
    samples, batch = args.samples, 1 if dims[0] == 1 else 8  # a fixed batch of 1 stays 1
    if len(dims) == 4 and dims[1:] == [3, 150, 150]:
        paths = cal.files(args.calib, cal.IMAGE_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        chipper = cal.FaceChipper()
        calib = cal.face_chips(first, per_image=2, jitter=0.05, limit=samples, chipper=chipper)
        spread = rest[:: max(1, len(rest) // samples)]
        evaluation = cal.face_chips(spread, limit=samples, chipper=chipper)
    elif len(dims) == 4 and 3 in (dims[1], dims[3]):
        paths = cal.files(args.calib, cal.IMAGE_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        low, high = args.pixel_range
        calib = _images(first[:samples], dims, low, high)
        evaluation = _images(rest[:samples], dims, low, high)
    elif len(dims) == 2:
        paths = cal.files(args.calib, cal.AUDIO_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        calib = cal.speech_windows(first, args.window)[:samples]
        evaluation = cal.speech_windows(rest, args.window)[:samples]
        batch = 1
    else:
        raise ToolError(f"no calibration data for input {name} {dims}: use an image or audio model")
    if not len(evaluation):
        raise ToolError(f"{args.calib}: no evaluation data left after the identity split")
    return Data(cal.batches(name, calib, batch), cal.batches(name, evaluation, batch))


def _load(path: Path) -> onnx.ModelProto:
    try:
        return onnx.load(path)
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError) as err:  # type: ignore[attr-defined]
        raise ToolError(f"{path}: {err}") from err


def _print_reports(
    models: dict[str, onnx.ModelProto], reference: onnx.ModelProto, data: Data
) -> None:
    from tools.compact.compress.measure import compare

    reports = compare(list(models.values()), data.evaluation, reference)
    for label, report in zip(models, reports, strict=True):
        print(report.line(label))


def _prune(args: argparse.Namespace) -> int:
    from tools.compact.compress.passes import simplify
    from tools.compact.compress.prune import prune

    model = simplify(_load(args.model))
    data = load_data(model, args)
    result = prune(
        model,
        data.calibration,
        args.target_flops,
        with_reconstruction=not args.no_reconstruct,
        eval_feeds=data.calibration[:2],
        seed=args.seed,
    )
    onnx.save(result.model, args.out)
    print(f"{args.out}: FLOPs {result.flops_after / result.flops_before:.3f} of the original")
    _print_reports({"before": model, "after": result.model}, model, data)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from tools.compact.compress.quantize import decide, preprocess, quantize_int8, search

    model = _load(args.model)
    data = load_data(model, args)
    if args.plain:
        quantized = quantize_int8(preprocess(model), data.calibration, plain=True)
    else:
        choice = search(model, data.calibration, data.evaluation)
        for method, excluded, fid in choice.tried:
            print(f"  {method:<10} float nodes {list(excluded)}: cosine {fid.cosine_mean:.5f}")
        print(f"chosen: {choice.method}, float nodes {list(choice.excluded)}")
        quantized = choice.model
    sample = first_sample(data.evaluation[0])
    decision = decide(model, quantized, sample, prefer_size=args.prefer_size)
    print(
        f"fp32 {decision.fp32_ms:.2f} ms, int8 {decision.int8_ms:.2f} ms "
        f"({decision.speedup:.2f}x); {decision.reason}"
    )
    onnx.save(quantized if decision.keep_int8 else model, args.out)
    print(f"{args.out}: {'int8' if decision.keep_int8 else 'fp32 (int8 refused)'}")
    _print_reports({"fp32": model, "int8": quantized}, model, data)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    reference = _load(args.reference)
    data = load_data(reference, args)
    models = {"reference": reference} | {path.name: _load(path) for path in args.models}
    _print_reports(models, reference, data)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calib", type=Path, required=True, help="photos or WAV files by identity")
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (64)")
    parser.add_argument(
        "--pixel-range", type=float, nargs=2, default=(0.0, 255.0), help="image input range"
    )
    parser.add_argument("--window", type=int, default=16000, help="audio window in samples")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``prune``, ``quantize`` and ``evaluate`` subcommands."""
    parser = subparsers.add_parser("prune", help="structured pruning to a FLOPs target")
    parser.add_argument("model", type=Path)
    parser.add_argument("--target-flops", type=float, required=True, help="fraction, e.g. 0.5")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-reconstruct", action="store_true", help="skip least squares")
    parser.add_argument("--seed", type=int, default=0)
    _common(parser)
    parser.set_defaults(func=_prune)

    parser = subparsers.add_parser("quantize", help="int8 where it is faster (1 thread)")
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plain", action="store_true", help="quantize_static defaults only")
    parser.add_argument("--prefer-size", action="store_true", help="keep int8 if only smaller")
    _common(parser)
    parser.set_defaults(func=_quantize)

    parser = subparsers.add_parser("evaluate", help="FLOPs, size, latency and fidelity")
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--reference", type=Path, required=True)
    _common(parser)
    parser.set_defaults(func=_evaluate)

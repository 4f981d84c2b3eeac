"""The compress family: ``prune``, ``quantize`` and ``evaluate`` an ONNX model.

Each takes ``--calib DIR`` (photos or WAV files in one sub-folder per identity, see
:mod:`tools.compact.compress.feeds`) and prints FLOPs, size, latency and fidelity per model,
or with ``--json`` one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.compact.command import add_command, add_json_option, json_stdout

if TYPE_CHECKING:
    import onnx

    from tools.compact.compress.feeds import Feeds
    from tools.compact.compress.measure import Report


def _feeds(model: onnx.ModelProto, args: argparse.Namespace) -> Feeds:
    from tools.compact.compress.feeds import FeedOptions, model_feeds

    low, high = args.pixel_range
    return model_feeds(model, FeedOptions(args.calib, args.samples, (low, high), args.window))


def _measure(
    models: dict[str, onnx.ModelProto], reference: onnx.ModelProto, feeds: Feeds
) -> dict[str, Report]:
    """Measure every model (latency interleaved) and its fidelity against ``reference``."""
    from tools.compact.compress.measure import compare

    reports = compare(list(models.values()), feeds.evaluation, reference)
    return dict(zip(models, reports, strict=True))


def _show(
    args: argparse.Namespace, lines: list[str], data: dict[str, Any], reports: dict[str, Report]
) -> None:
    """Print ``lines`` and a line per model, or with ``--json`` the data and every report."""
    if args.json:
        models = {label: report.data() for label, report in reports.items()}
        print(json.dumps(data | {"models": models}, indent=2))
        return
    for line in [*lines, *(report.line(label) for label, report in reports.items())]:
        print(line)


def _prune(args: argparse.Namespace) -> int:
    import onnx

    from tools.compact.compress.feeds import load_model
    from tools.compact.compress.passes import simplify
    from tools.compact.compress.prune import prune

    model = simplify(load_model(args.model))
    with json_stdout(args.json):
        feeds = _feeds(model, args)
        result = prune(
            model,
            feeds.calibration,
            args.target_flops,
            with_reconstruction=not args.no_reconstruct,
            eval_feeds=feeds.calibration[:2],
            seed=args.seed,
        )
        onnx.save(result.model, args.out)
        reports = _measure({"before": model, "after": result.model}, model, feeds)
    ratio = result.flops_after / result.flops_before
    data = {
        "out": str(args.out),
        "flops_before": result.flops_before,
        "flops_after": result.flops_after,
        "flops_ratio": ratio,
    }
    _show(args, [f"{args.out}: FLOPs {ratio:.3f} of the original"], data, reports)
    return 0


def _quantize(args: argparse.Namespace) -> int:
    import onnx

    from tools.compact.compress.feeds import load_model
    from tools.compact.compress.graph import first_sample
    from tools.compact.compress.quantize import decide, preprocess, quantize_int8, search

    with json_stdout(args.json):
        model = load_model(args.model)
        feeds = _feeds(model, args)
        lines: list[str] = []
        data: dict[str, Any] = {"out": str(args.out), "plain": args.plain}
        if args.plain:
            quantized = quantize_int8(preprocess(model), feeds.calibration, plain=True)
        else:
            choice = search(model, feeds.calibration, feeds.evaluation)
            for method, excluded, fid in choice.tried:
                lines.append(
                    f"  {method:<10} float nodes {list(excluded)}: cosine {fid.cosine_mean:.5f}"
                )
            lines.append(f"chosen: {choice.method}, float nodes {list(choice.excluded)}")
            data["tried"] = [
                {"method": method, "float_nodes": list(excluded), "cosine_mean": fid.cosine_mean}
                for method, excluded, fid in choice.tried
            ]
            data |= {"method": choice.method, "float_nodes": list(choice.excluded)}
            quantized = choice.model
        sample = first_sample(feeds.evaluation[0])
        decision = decide(model, quantized, sample, prefer_size=args.prefer_size)
        lines.append(
            f"fp32 {decision.fp32_ms:.2f} ms, int8 {decision.int8_ms:.2f} ms "
            f"({decision.speedup:.2f}x); {decision.reason}"
        )
        onnx.save(quantized if decision.keep_int8 else model, args.out)
        lines.append(f"{args.out}: {'int8' if decision.keep_int8 else 'fp32 (int8 refused)'}")
        data |= {
            "fp32_ms": decision.fp32_ms,
            "int8_ms": decision.int8_ms,
            "speedup": decision.speedup,
            "keep_int8": decision.keep_int8,
            "reason": decision.reason,
        }
        reports = _measure({"fp32": model, "int8": quantized}, model, feeds)
    _show(args, lines, data, reports)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from tools.compact.compress.feeds import load_model

    reference = load_model(args.reference)
    models = {"reference": reference} | {path.name: load_model(path) for path in args.models}
    with json_stdout(args.json):
        reports = _measure(models, reference, _feeds(reference, args))
    _show(args, [], {"reference": str(args.reference)}, reports)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calib", type=Path, required=True, help="photos or WAV files by identity")
    parser.add_argument("--samples", type=int, default=64, help="calibration samples (64)")
    parser.add_argument(
        "--pixel-range", type=float, nargs=2, default=(0.0, 255.0), help="image input range"
    )
    parser.add_argument("--window", type=int, default=16000, help="audio window in samples")
    add_json_option(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the compress family's subcommands."""
    parser = add_command(subparsers, "prune", _prune, "structured pruning to a FLOPs target")
    parser.add_argument("model", type=Path)
    parser.add_argument("--target-flops", type=float, required=True, help="fraction, e.g. 0.5")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-reconstruct", action="store_true", help="skip least squares")
    parser.add_argument("--seed", type=int, default=0)
    _common(parser)

    parser = add_command(subparsers, "quantize", _quantize, "int8 where it is faster (1 thread)")
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--plain", action="store_true", help="quantize_static defaults only")
    parser.add_argument("--prefer-size", action="store_true", help="keep int8 if only smaller")
    _common(parser)

    parser = add_command(subparsers, "evaluate", _evaluate, "FLOPs, size, latency and fidelity")
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--reference", type=Path, required=True)
    _common(parser)

"""``docs/model-report.md`` and its Pareto plot: what one ``build-pack`` run measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tools.compact.pack.candidates import Candidate
from tools.compact.pack.heldout import TIMING_ROUNDS, TIMING_RUNS
from tools.compact.pack.rules import MAX_PACK_BYTES, MAX_PACK_BYTES_WITH_REASON


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


def door_lines(door_frames: dict[str, dict[str, Any]]) -> list[str]:
    """One line per tier: how its door distance was found, the owners' TAR per frame set."""
    lines = []
    for tier, door in door_frames.items():
        tar = door["door_tar_frames"]
        sets = dict.fromkeys(key.rsplit("_", 1)[0] for key in tar)
        frames = ", ".join(
            f"{name} {tar[f'{name}_onnxruntime']:.0%} / {tar[f'{name}_ncnn']:.0%}" for name in sets
        )
        lines += [
            "",
            f"- {tier}: {door['door_calibration']}; owners' TAR there on frames (ORT / ncnn): "
            f"{frames}.",
        ]
    return lines


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
        "| ms ORT | ms ncnn | TAR / FAR @ threshold | door: distance, owners' TAR ORT / ncnn "
        "| int8 | ncnn weights |",
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
            f"{m['unlock_threshold']:.2f}, {m['door_tar_onnxruntime']:.1%} / "
            f"{m['door_tar_ncnn']:.1%}",
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
    lines += door_lines(report.get("door_frames", {}))
    lines += [
        "",
        "## Baselines (same run, each embedder as imported)",
        "",
        "| model | backend | accuracy | ms |",
        "|---|---|---|---|",
    ]
    for name, m in report["baselines"].items():
        lines.append(f"| {name} | {m['backend']} | {m['lfw_accuracy']:.2%} | {m['ms']:.1f} |")
    lines += [
        "",
        "## Tiers and the goals of issue 20",
        "",
        "Verification: 10-fold accuracy on the held-out pairs. Door: the unlock distance at",
        "which no dev impostor is accepted on either backend (3 faces enrolled for the first",
        "half of all identities, the others impostors), and the owners' per-frame TAR there.",
        "Speed: the worse backend's ms over accurate's. Goal cells show the floor.",
        "",
        "| tier | embedder | size | verification ORT / ncnn | door distance | owners' TAR "
        "ORT / ncnn | embedder ms ORT / ncnn | speed vs accurate | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in report["goals"]:
        c, goal, met = report["tiers"][g["tier"]], g["goal"], g["met"]
        speed = "" if goal["speed"] is None else f" (<= {goal['speed']:.1f}x)"
        cells = [
            g["tier"],
            c.name,
            f"{c.size / 1e6:.1f} MB",
            f"{g['accuracy']['onnxruntime']:.2%} / {g['accuracy']['ncnn']:.2%} "
            f"(>= {goal['accuracy']:.1%})",
            f"{g['unlock_threshold']:.2f}",
            f"{g['door_tar']['onnxruntime']:.1%} / {g['door_tar']['ncnn']:.1%} "
            f"(>= {goal['door_tar']:.0%})",
            f"{g['ms']['onnxruntime']:.1f} / {g['ms']['ncnn']:.1f}",
            f"{g['speed']:.2f}x{speed}",
            ", ".join(f"{part} {'yes' if ok else 'NO'}" for part, ok in met.items()),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Pack size: {report['bytes'] / 1e6:.1f} MB including the command set and NOTICE "
        f"(limit {MAX_PACK_BYTES / 1e6:.0f} MB, {MAX_PACK_BYTES_WITH_REASON / 1e6:.0f} MB "
        "with a reason). " + (report["size_reason"] or "It fits the 30 MB limit."),
        "",
        "Rules (`tools/compact/pack/rules.py`): accurate = the most accurate candidate (then",
        "the best door TAR); balanced and fast = the fastest candidate meeting all its goals,",
        "else the fastest keeping accuracy and door, then accuracy and speed (balanced), or",
        "accuracy and speed, then door and speed, then accuracy and door (fast), else",
        "accurate's model (a tier reuses a chosen model when its",
        "own pick would not fit). The pack may exceed 30 MB",
        "(up to 45 MB) only when that meets more goals. onnxruntime files compute PReLU as",
        "Relu(x) - a*Relu(-x) (exact). ORT int8 calibrates on a quarter of the calibration",
        "chips, pruning and ncnn int8 on all of them; the shared ONNX files store fp16 weights",
        "(YuNet's: fp32). Detectors and speech models are shared; the tiers differ in how many",
        "pixels YuNet sees of a frame (tools/compact/pack/proposer.py). Times: the best of "
        f"{TIMING_ROUNDS * TIMING_RUNS} runs per model, taken in turns with every other model.",
        "ncnn weights: int8 runs ncnn's integer convolution kernels (the first convolution",
        "and other layers run fp32 from fp16 weights); 8-bit codebook or fp16 weights only",
        "shrink the file and run fp32",
        "arithmetic. The ncnn fp32 baseline runs with the fastest fp32 settings found",
        "(winograd off on the widest convolutions, no 4x3 winograd).",
        "",
        "![latency against accuracy](model-report.png)",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def report_data(report: dict[str, Any]) -> dict[str, Any]:
    """Return the report as JSON data: candidates by name, each tier's candidate name."""
    return {
        "candidates": {
            c.name: {"flops_target": c.flops_target, "bytes": c.size, **c.metrics}
            for c in report["candidates"]
        },
        "tiers": {tier: c.name for tier, c in report["tiers"].items()},
        "baselines": report["baselines"],
        "goals": report["goals"],
        "bytes": report["bytes"],
        "limit_bytes": MAX_PACK_BYTES,
        "size_reason": report["size_reason"],
        "door_frames": report.get("door_frames", {}),
        **report["about"],
    }

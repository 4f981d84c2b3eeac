"""The face evaluations on photos: pairs, verification, identification and detection.

Subcommands: ``make-pairs``, ``verify``, ``identify``, ``detect-recall`` and ``night-frames``
(grey and IR-like door frames). Every one that measures prints a table, or with ``--json`` one
JSON object. The other evaluations (voice, the door at home, the backends) are in
``evaluate/cli.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from custom_components.compact_ai.engine.face.detector import VARIANTS
from custom_components.compact_ai.engine.runtime.availability import BACKENDS
from tools.compact.command import add_command, add_json_option
from tools.compact.evaluate.verify import CASCADE


def _night_frames(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.night_frames import night_frames

    for folder, count in night_frames(args.frames, args.widths).items():
        print(f"{args.frames / folder}: {count} frames")
    return 0


def _make_pairs(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.labels import read_label_errors
    from tools.compact.evaluate.pairs import make_pairs, write_pairs

    exclude = read_label_errors(args.exclude)
    pairs = make_pairs(args.images, args.pairs_per_class, args.seed, exclude)
    write_pairs(args.out, pairs)
    same = sum(pair.same for pair in pairs)
    print(f"{args.out}: {same} same-person and {len(pairs) - same} different-person pairs")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.pairs import read_pairs
    from tools.compact.evaluate.verify import evaluate_pairs, load_face_pipeline, report_lines

    pairs = read_pairs(args.pairs)
    pipeline, threshold = load_face_pipeline(args.tier, args.pack, args.backend, args.detector)
    threshold = args.threshold if args.threshold is not None else threshold
    report = evaluate_pairs(pipeline, pairs, args.images, threshold)
    report.update(tier=args.tier, backend=args.backend, detector=args.detector)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print("\n".join(report_lines(report)))
    return 0


def _identify(args: argparse.Namespace) -> int:
    from custom_components.compact_ai.engine.face.gallery import Gallery, margin_for
    from tools.compact.evaluate.identify import evaluate, report_lines, split
    from tools.compact.evaluate.labels import read_label_errors
    from tools.compact.evaluate.verify import door_distance, load_face_pipeline

    exclude = read_label_errors(args.exclude)
    plan = split(args.gallery, args.probe, args.enroll_per_person, args.gallery_people, exclude)
    pipeline, threshold = load_face_pipeline(args.tier, args.pack, args.backend, args.detector)
    margin = margin_for(threshold) if args.margin is None else args.margin  # the tier's scale
    if args.door:
        threshold = door_distance(args.tier, args.pack)
    threshold = args.threshold if args.threshold is not None else threshold
    gallery = Gallery(threshold=threshold, margin=margin)
    report = evaluate(pipeline, plan, gallery, tuple(args.also_threshold))
    report.update(
        tier=args.tier,
        backend=args.backend,
        detector=args.detector,
        threshold=threshold,
        margin=margin,
        enrolled_people=len(gallery.people),
        enrolled_faces=sum(gallery.count(person) for person in gallery.people),
    )
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print("\n".join(report_lines(report)))
    return 0


def _detect_recall(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.detection import evaluate, read_boxes, report_lines
    from tools.compact.evaluate.verify import load_face_pipeline

    labelled = read_boxes(args.boxes, args.images, args.prefix)
    pipeline, _ = load_face_pipeline(args.tier, args.pack, args.backend, args.detector)
    report = evaluate(pipeline, labelled)
    report.update(tier=args.tier, backend=args.backend, detector=args.detector)
    if args.json:
        print(json.dumps(report, sort_keys=True))
        return 0
    print("\n".join(report_lines(report)))
    return 0


def _model_options(parser: argparse.ArgumentParser) -> None:
    """Add the options choosing the tier, pack, backend and detector of a face evaluation."""
    parser.add_argument("--tier", default="reference", help="model tier (default: reference)")
    parser.add_argument("--pack", type=Path, default=None, help="pack folder (default: by tier)")
    parser.add_argument("--backend", choices=BACKENDS, default="onnxruntime")
    parser.add_argument(
        "--detector",
        choices=(CASCADE, *VARIANTS),
        default=CASCADE,
        help="the tier's detection (default), or one BlazeFace model alone on the whole frame",
    )
    parser.add_argument("--threshold", type=float, default=None, help="override the threshold")
    add_json_option(parser)


def _exclude_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--exclude``: a list of photos filed under the wrong person, left out."""
    parser.add_argument(
        "--exclude",
        type=Path,
        default=None,
        metavar="FILE",
        help="photos to leave out, <identity>/<file> per line (e.g. eval/label_errors.txt)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the face evaluations' subcommands."""
    parser = add_command(
        subparsers,
        "make-pairs",
        _make_pairs,
        "write a deterministic LFW-style pairs file from DIR/<name>/*.jpg",
    )
    parser.add_argument("--images", type=Path, required=True, help="DIR/<name>/<name>_NNNN.jpg")
    parser.add_argument("--out", type=Path, required=True, help="pairs file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pairs-per-class",
        type=int,
        default=300,
        help="same-person pairs, and as many different-person pairs (default 300)",
    )
    _exclude_option(parser)

    parser = add_command(
        subparsers, "verify", _verify, "face verification accuracy on a pairs file"
    )
    _model_options(parser)
    parser.add_argument("--pairs", type=Path, required=True, help="LFW-style pairs file")
    parser.add_argument("--images", type=Path, required=True, help="DIR/<name>/<name>_NNNN.jpg")

    parser = add_command(
        subparsers, "identify", _identify, "open-set identification against a gallery"
    )
    _model_options(parser)
    parser.add_argument("--gallery", type=Path, required=True, help="DIR/<person>/* to enroll")
    parser.add_argument("--probe", type=Path, required=True, help="DIR/<person>/* to identify")
    parser.add_argument("--enroll-per-person", type=int, default=None, metavar="K")
    parser.add_argument(
        "--gallery-people", type=int, default=None, metavar="N", help="enroll the first N only"
    )
    parser.add_argument(
        "--margin", type=float, default=None, help="ambiguity margin (default: the tier's)"
    )
    parser.add_argument(
        "--door", action="store_true", help="match at the tier's unlock distance (the door's)"
    )
    parser.add_argument(
        "--also-threshold",
        type=float,
        action="append",
        default=[],
        metavar="T",
        help="also summarize at threshold T (repeatable; e.g. the door's unlock distance)",
    )
    _exclude_option(parser)

    parser = add_command(
        subparsers,
        "detect-recall",
        _detect_recall,
        "face detection recall against hand-drawn boxes (imglab XML)",
    )
    _model_options(parser)
    parser.add_argument("--images", type=Path, required=True, help="folder of the images")
    parser.add_argument("--boxes", type=Path, nargs="+", required=True, help="imglab XML files")
    parser.add_argument("--prefix", default="", help="try this prefix on image names too")

    parser = add_command(
        subparsers,
        "night-frames",
        _night_frames,
        "grey and IR-like copies (gray_W, ir_W) of doorcam.py frames (doorcam_W)",
    )
    parser.add_argument("--frames", type=Path, required=True, help="doorcam.py output")
    parser.add_argument("--widths", type=int, nargs="+", default=[64], help="face widths W")

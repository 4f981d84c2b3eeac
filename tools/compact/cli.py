"""Command line of the toolkit: every subcommand lives in its own module.

A command module exposes ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed namespace, returns an exit code). Modules keep heavy
imports inside their functions so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tools.compact.errors import ToolError

COMMAND_MODULES: tuple[str, ...] = (
    "tools.compact.pack.sources",
    "tools.compact.pack.reference",
    "tools.compact.evaluate.pairs",
    "tools.compact.evaluate.verify",
    "tools.compact.evaluate.identify",
    "tools.compact.evaluate.bench",
    "tools.compact.pack.musl_wheels",
    "tools.compact.evaluate.regressions",
    "tools.compact.pack.build",
    "tools.compact.compress.cli",
    "tools.compact.train.commands",
    "tools.compact.evaluate.commands",
    "tools.compact.evaluate.wake",
    "tools.compact.evaluate.liveness",
    "tools.compact.evaluate.soak",
    "tools.compact.evaluate.enroll_memory",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.compact",
        description="Compact AI toolkit: fetch, import, compress, evaluate and pack models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the toolkit and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ToolError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

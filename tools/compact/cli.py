"""Command line of the toolkit: one module per command family.

A family module (``pack/cli.py``, ``compress/cli.py``, ``evaluate/face_cli.py``,
``evaluate/cli.py``, ``train/cli.py``) exposes ``register(subparsers)``, which adds its
subcommands with :func:`tools.compact.command.add_command`: each sets ``func`` (called with the
parsed namespace, returns an exit code); ``--help`` lists them in the order of ``FAMILIES``.
Family modules import the library modules inside their handlers so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tools.compact.errors import ToolError

FAMILIES: tuple[str, ...] = (
    "tools.compact.pack.cli",
    "tools.compact.compress.cli",
    "tools.compact.evaluate.face_cli",
    "tools.compact.evaluate.cli",
    "tools.compact.train.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every family's subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.compact",
        description="Compact AI toolkit: fetch, import, compress, evaluate and pack models.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in FAMILIES:
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

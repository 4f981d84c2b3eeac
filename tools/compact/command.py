"""How a command family module adds its subcommands (see :mod:`tools.compact.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

Handler = Callable[[argparse.Namespace], int]


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    summary: str,
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; ``handler`` gets the parsed arguments and returns the exit code."""
    parser = subparsers.add_parser(name, help=summary)
    parser.set_defaults(func=handler)
    return parser


def add_json_option(
    parser: argparse.ArgumentParser, summary: str = "print one JSON object"
) -> None:
    """Add ``--json``: what the command measured as JSON on stdout, instead of a table."""
    parser.add_argument("--json", action="store_true", help=summary)


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """While ``enabled`` (``--json``), send what libraries print to stderr: stdout is the JSON."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield

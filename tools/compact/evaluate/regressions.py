"""``check-regressions``: run the evaluations on real held-out data and compare with the floor.

The checks and their committed limits live in ``eval/thresholds.json``. Each check is a
toolkit command that prints one JSON object (``--json``); ``{evaldata}`` and ``{work}`` in
its arguments are replaced by the evaluation data folder and a scratch folder. A metric
below its ``min`` or above its ``max`` is a regression, and the command exits 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tools.compact.errors import ToolError
from tools.compact.paths import EVALDATA_DIR, REPO_ROOT

THRESHOLDS = REPO_ROOT / "eval" / "thresholds.json"


def _run_check(check: dict[str, Any], evaldata: Path, work: Path) -> dict[str, Any]:
    argv = [arg.format(evaldata=evaldata, work=work) for arg in check["argv"]]
    result = subprocess.run(
        [sys.executable, "-m", "tools.compact", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(f"{check['name']}: exit {result.returncode}\n{result.stderr[-2000:]}")
    if not check.get("json", True):
        return {}
    text = result.stdout.strip()
    try:
        report: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:  # progress lines before a one-line JSON object
        report = json.loads(text.splitlines()[-1])
    return report


def compare(name: str, report: dict[str, Any], check: dict[str, Any]) -> list[str]:
    """Return one line per metric, prefixed with FAIL where the limit is broken."""
    lines = []
    for bound, limits in (("min", check.get("min", {})), ("max", check.get("max", {}))):
        for metric, limit in limits.items():
            value = report.get(metric)
            broken = (
                value is None
                or (bound == "min" and value < limit)
                or (bound == "max" and value > limit)
            )
            status = "FAIL" if broken else "ok  "
            lines.append(f"{status} {name}: {metric} = {value} ({bound} {limit})")
    return lines


def check_regressions(thresholds: Path, evaldata: Path) -> int:
    """Run every check; print a table; return 1 if any metric regressed."""
    checks = json.loads(thresholds.read_text(encoding="utf-8"))["checks"]
    failed = False
    with tempfile.TemporaryDirectory(prefix="compact_eval_") as tmp:
        for check in checks:
            report = _run_check(check, evaldata, Path(tmp))
            for line in compare(check["name"], report, check):
                print(line, flush=True)
                failed |= line.startswith("FAIL")
    return 1 if failed else 0


def _run(args: argparse.Namespace) -> int:
    if not args.evaldata.is_dir():
        raise ToolError(f"{args.evaldata}: no evaluation data here")
    return check_regressions(args.thresholds, args.evaldata)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``check-regressions`` subcommand."""
    parser = subparsers.add_parser(
        "check-regressions", help="run the evaluations on held-out data against committed floors"
    )
    parser.add_argument("--thresholds", type=Path, default=THRESHOLDS)
    parser.add_argument("--evaldata", type=Path, default=EVALDATA_DIR)
    parser.set_defaults(func=_run)

"""``check-regressions``: run the evaluations on real held-out data and compare with the floor.

The checks and their committed limits live in ``eval/thresholds.json``. Each check is a
toolkit command that prints one JSON object (``--json``); ``{evaldata}`` and ``{work}`` in
its arguments are replaced by the evaluation data folder and a scratch folder. A metric
below its ``min`` or above its ``max`` is a regression, and the command exits 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.compact.errors import ToolError
from tools.compact.paths import REPO_ROOT

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


@dataclass(frozen=True)
class CheckResult:
    """One check: what its command reported and a line per limit."""

    name: str
    report: dict[str, Any]
    lines: list[str]

    @property
    def failed(self) -> bool:
        """Return whether a limit is broken."""
        return any(line.startswith("FAIL") for line in self.lines)


def check_regressions(thresholds: Path, evaldata: Path) -> Iterator[CheckResult]:
    """Run every check in turn; yield each result as soon as it is known."""
    checks = json.loads(thresholds.read_text(encoding="utf-8"))["checks"]
    with tempfile.TemporaryDirectory(prefix="compact_eval_") as tmp:
        for check in checks:
            report = _run_check(check, evaldata, Path(tmp))
            yield CheckResult(check["name"], report, compare(check["name"], report, check))

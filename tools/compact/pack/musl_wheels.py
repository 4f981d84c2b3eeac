"""``refresh-wheel-list``: record which runtime wheels PyPI has for Home Assistant's platforms.

Home Assistant OS and the container run Alpine (musl) on x86-64 and ARM64. The pinned ncnn
(``manifest.json``) must have a musllinux wheel for every Python Home Assistant uses;
onnxruntime (``requirements.txt``) is recorded too, to show where it is missing. pip resolves
each combination (``pip install --dry-run --report``: nothing is downloaded or installed) and
the result is committed, so the test that reads it needs no network.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tools.compact.errors import ToolError
from tools.compact.paths import REPO_ROOT

LIST_PATH: Final = Path(__file__).resolve().parents[1] / "data" / "runtime_wheels.txt"
MANIFEST_PATH: Final = REPO_ROOT / "custom_components" / "compact_ai" / "manifest.json"
REQUIREMENTS_PATH: Final = REPO_ROOT / "requirements.txt"
PLATFORMS: Final = ("musllinux_1_2_x86_64", "musllinux_1_2_aarch64")
PYTHONS: Final = ("3.13", "3.14")
HEADER: Final = (
    "# Written by `python -m tools.compact refresh-wheel-list`; do not edit.\n"
    "# requirement python platform wheel sha256 ('-': PyPI has no matching wheel)\n"
)


@dataclass(frozen=True, slots=True)
class WheelRecord:
    """Which wheel pip picks for one requirement, Python version and platform."""

    requirement: str
    python: str
    platform: str
    wheel: str | None
    sha256: str | None

    def line(self) -> str:
        """Return the record as one line of the list file."""
        fields = (self.requirement, self.python, self.platform, self.wheel, self.sha256)
        return " ".join(field or "-" for field in fields)


def parse_line(line: str) -> WheelRecord:
    """Parse one line of the list file."""
    requirement, python, platform, wheel, sha256 = line.split()
    return WheelRecord(
        requirement,
        python,
        platform,
        None if wheel == "-" else wheel,
        None if sha256 == "-" else sha256,
    )


def read_list(path: Path = LIST_PATH) -> list[WheelRecord]:
    """Return the records of a list file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [parse_line(line) for line in lines if line.strip() and not line.startswith("#")]


def pinned_requirements() -> list[str]:
    """Return the ``ncnn==`` pin of manifest.json and the ``onnxruntime==`` pin of requirements."""
    manifest = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    lines = [*manifest["requirements"], *REQUIREMENTS_PATH.read_text(encoding="utf-8").split()]
    pins = [
        next((r for r in lines if r.startswith(f"{name}==")), None)
        for name in ("ncnn", "onnxruntime")
    ]
    if None in pins:
        raise ToolError("manifest.json must pin ncnn==, requirements.txt onnxruntime==")
    return [pin for pin in pins if pin]


def query(requirement: str, python: str, platform: str) -> WheelRecord:
    """Ask pip which wheel it would install for ``requirement`` on ``platform``."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps"]
        command += ["--ignore-installed", "--only-binary=:all:", "--platform", platform]
        command += ["--python-version", python, "--target", tmp, "--report", str(report)]
        result = subprocess.run(
            [*command, requirement], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            if "No matching distribution" in result.stderr:
                return WheelRecord(requirement, python, platform, None, None)
            raise ToolError(f"pip failed for {requirement} on {platform}: {result.stderr.strip()}")
        (item,) = json.loads(report.read_text(encoding="utf-8"))["install"]
    info = item["download_info"]
    return WheelRecord(
        requirement,
        python,
        platform,
        info["url"].rsplit("/", 1)[-1],
        info["archive_info"]["hashes"]["sha256"],
    )


def refresh(path: Path = LIST_PATH) -> list[WheelRecord]:
    """Query every pinned runtime for every Python and platform; write the list file."""
    records = [
        query(requirement, python, platform)
        for requirement in pinned_requirements()
        for python in PYTHONS
        for platform in PLATFORMS
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(record.line() + "\n" for record in records), encoding="utf-8")
    return records

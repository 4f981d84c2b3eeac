"""The version has one source, manifest.json; pyproject.toml and the changelog follow it."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manifest_version() -> str:
    manifest = json.loads((ROOT / "custom_components/compact_ai/manifest.json").read_text())
    version: str = manifest["version"]
    return version


def test_pyproject_has_the_manifest_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == manifest_version()


def test_changelog_has_the_manifest_version_as_its_latest_release() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, re.MULTILINE)
    assert releases[0] == manifest_version()
    headings = re.findall(r"^## \[([^\]]+)\]", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    for version in headings:  # every heading has its link at the end
        assert re.search(rf"^\[{re.escape(version)}\]: https://", changelog, re.MULTILINE)
    sections = re.findall(r"^### (.+)$", changelog, re.MULTILINE)
    assert set(sections) <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}

"""Fetching sources: the Kokoro model is only assembled when its parts join to the pinned hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.compact.errors import ToolError
from tools.compact.pack.sources import (
    KOKORO_DATA_PACKAGES,
    KOKORO_MODEL_PACKAGES,
    kokoro_dir,
    sources_dir,
)


def test_kokoro_parts_that_do_not_join_to_the_pinned_model_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPACT_AI_CACHE", str(tmp_path))
    for package in (*KOKORO_DATA_PACKAGES, *KOKORO_MODEL_PACKAGES):
        for name in package.members:  # present, so nothing is downloaded
            (sources_dir() / name).parent.mkdir(parents=True, exist_ok=True)
            (sources_dir() / name).write_bytes(b"not the real thing")
    with pytest.raises(ToolError, match="pinned sha256"):
        kokoro_dir()
    folder = sources_dir() / "kokoro"
    assert not (folder / "kokoro.onnx").exists()
    assert not list(folder.glob("*.partial"))
    assert not list(folder.glob("part*.bin"))  # a retry downloads them again


def test_tests_never_download_a_missing_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPACT_AI_CACHE", str(tmp_path))  # an empty cache
    with pytest.raises(ToolError, match="run scripts/setup"):
        kokoro_dir()
    assert not list((tmp_path / "downloads").iterdir())

"""The toolkit's command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.compact.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_subcommands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.compact", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fetch-sources" in result.stdout


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_fetch_sources_lists_verified_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch-sources"]) == 0
    out = capsys.readouterr().out
    assert "dlib_face_recognition_resnet_model_v1.dat" in out
    assert "face_detection_short_range.tflite" in out
    assert "embedding_model.tflite" in out

"""Backend discovery and choice."""

from __future__ import annotations

from unittest.mock import patch

import pytest

from custom_components.compact_ai.engine.errors import BackendUnavailableError
from custom_components.compact_ai.engine.runtime import availability as runtime


@pytest.mark.parametrize("machine", ["x86_64", "AMD64"])
def test_auto_prefers_onnxruntime_where_it_imports(machine: str) -> None:
    """On x86 (the machine is named, so this holds when the tests run on a Pi too)."""
    with patch("platform.machine", return_value=machine):
        assert runtime.resolve_backend("auto") == "onnxruntime"
        assert runtime.resolve_backend("ncnn") == "ncnn"


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "armv7l"])
def test_auto_prefers_ncnn_on_arm(machine: str) -> None:
    """On a Pi, ncnn reproduces the x86 decisions the thresholds were measured with."""
    with patch("platform.machine", return_value=machine):
        assert runtime.available_backends() == ("ncnn", "onnxruntime")
        assert runtime.resolve_backend("auto") == "ncnn"
        assert runtime.resolve_backend("onnxruntime") == "onnxruntime"


def test_auto_on_arm_without_ncnn_uses_onnxruntime() -> None:
    with (
        patch("platform.machine", return_value="aarch64"),
        patch.object(runtime, "backend_importable", side_effect=lambda n: n == "onnxruntime"),
    ):
        assert runtime.resolve_backend("auto") == "onnxruntime"


def test_auto_falls_back_to_ncnn_without_onnxruntime() -> None:
    with patch.object(runtime, "backend_importable", side_effect=lambda n: n == "ncnn"):
        assert runtime.available_backends() == ("ncnn",)
        assert runtime.resolve_backend("auto") == "ncnn"
        with pytest.raises(BackendUnavailableError, match="onnxruntime cannot be imported"):
            runtime.resolve_backend("onnxruntime")


def test_no_backend_at_all() -> None:
    with (
        patch.object(runtime, "backend_importable", return_value=False),
        pytest.raises(BackendUnavailableError, match="neither"),
    ):
        runtime.resolve_backend("auto")


def test_unknown_backend_name() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        runtime.resolve_backend("tensorrt")


def test_backend_importable_reports_missing_module() -> None:
    assert runtime.backend_importable("compact_ai_no_such_runtime") is False

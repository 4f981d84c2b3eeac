"""Which inference runtimes this machine has, and which one to use."""

from __future__ import annotations

import importlib
import platform
from functools import cache
from typing import Final

from ..errors import BackendUnavailableError

ONNXRUNTIME: Final = "onnxruntime"
NCNN: Final = "ncnn"
AUTO: Final = "auto"
# Preference order for "auto": onnxruntime is faster and runs int8 on x86; ncnn runs everywhere.
BACKENDS: Final = (ONNXRUNTIME, NCNN)
# On ARM, ncnn decides exactly as on x86 (verify: 0.07 pt), onnxruntime's int8 kernels do not
# (false rejects 0.33 pt lower; docs/arm64.md), and the thresholds were measured on x86.
ARM_MACHINES: Final = frozenset({"aarch64", "arm64", "armv7l", "armv8l"})


@cache
def backend_importable(name: str) -> bool:
    """Return whether the runtime module ``name`` imports on this machine."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def preferred_backends() -> tuple[str, ...]:
    """Return every backend in the order ``auto`` tries them on this machine's CPU."""
    if platform.machine().lower() in ARM_MACHINES:
        return (NCNN, ONNXRUNTIME)
    return BACKENDS


def available_backends() -> tuple[str, ...]:
    """Return the importable backends, preferred first."""
    return tuple(name for name in preferred_backends() if backend_importable(name))


def resolve_backend(choice: str) -> str:
    """Turn a user choice (``auto`` or a backend name) into an importable backend."""
    if choice == AUTO:
        available = available_backends()
        if not available:
            raise BackendUnavailableError("neither onnxruntime nor ncnn can be imported")
        return available[0]
    if choice not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {choice!r}")
    if not backend_importable(choice):
        raise BackendUnavailableError(f"{choice} cannot be imported on this machine")
    return choice

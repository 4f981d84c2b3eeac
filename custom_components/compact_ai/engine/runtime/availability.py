"""Which inference runtimes this machine has, and which one to use."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Final

from ..errors import BackendUnavailableError

ONNXRUNTIME: Final = "onnxruntime"
NCNN: Final = "ncnn"
AUTO: Final = "auto"
# Preference order for "auto": onnxruntime is faster and runs int8; ncnn runs everywhere.
BACKENDS: Final = (ONNXRUNTIME, NCNN)


@cache
def backend_importable(name: str) -> bool:
    """Return whether the runtime module ``name`` imports on this machine."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """Return the importable backends, preferred first."""
    return tuple(name for name in BACKENDS if backend_importable(name))


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

"""Run a TFLite file on LiteRT and its ONNX import on onnxruntime, and compare the outputs.

Shared by the whole-model and the operator tests of the TFLite importer; importing it skips a
test module when onnxruntime is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")


def _session(model: onnx.ModelProto) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _run_onnx(model: onnx.ModelProto, data: np.ndarray) -> dict[str, np.ndarray]:
    session = _session(model)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: data}), strict=True))


def run_litert(path: Path, data: np.ndarray) -> dict[str, np.ndarray]:
    """Run the reference runtime (test-only dependency: skip when it is missing)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    interpreter = litert.Interpreter(model_path=str(path), num_threads=1)
    detail = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(detail["index"], list(data.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], data)
    interpreter.invoke()
    return {o["name"]: interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()}


def assert_matches(path: Path, model: onnx.ModelProto, data: np.ndarray) -> None:
    expected = run_litert(path, data)
    actual = _run_onnx(model, data)
    assert set(actual) == set(expected)
    for name, reference in expected.items():
        _assert_close(reference, actual[name], name)


def _assert_close(reference: np.ndarray, actual: np.ndarray, name: str) -> None:
    assert actual.shape == reference.shape, name
    ref, got = reference.astype(np.float64).ravel(), actual.astype(np.float64).ravel()
    diff = np.abs(ref - got).max()
    cosine = ref @ got / (np.linalg.norm(ref) * np.linalg.norm(got))
    assert diff <= 1e-3 * np.abs(ref).max(), f"{name}: max abs diff {diff}"
    assert cosine >= 0.99999, f"{name}: cosine {cosine}"

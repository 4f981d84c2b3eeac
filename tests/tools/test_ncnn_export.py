"""ONNX to ncnn with pnnx: outputs agree with onnxruntime, or the export fails loudly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from tests.onnx_graphs import residual_cnn, spectrogram_like
from tools.compact.errors import ToolError
from tools.compact.importers.tflite import import_tflite
from tools.compact.ncnn import export as ncnn_export
from tools.compact.ncnn.export import cosine, export_ncnn, io_config, prepare_for_pnnx
from tools.compact.pack.sources import source_path


def load(param: Path, weights: Path, config: dict[str, Any]) -> NcnnModel:
    return NcnnModel(
        param.read_bytes(),
        weights.read_bytes(),
        name="test",
        inputs=tensor_specs(config, "inputs", "test"),
        outputs=tensor_specs(config, "outputs", "test"),
        options=NcnnOptions(),
    )


def test_export_agrees_with_onnxruntime_and_is_deterministic(tmp_path: Path) -> None:
    model = residual_cnn()
    onnx.save(model, tmp_path / "cnn.onnx")
    param, weights = export_ncnn(tmp_path / "cnn.onnx", tmp_path / "a")
    assert (param.name, weights.name) == ("cnn.param", "cnn.bin")
    config = io_config(model)
    assert config["inputs"] == [{"name": "image", "shape": [1, 3, 16, 16], "ncnn_blob": "in0"}]
    assert [(o["name"], o["shape"], o["ncnn_blob"]) for o in config["outputs"]] == [
        ("embedding", [1, 10], "out0"),
        ("features", [1, 8, 8, 8], "out1"),
    ]
    image = np.random.default_rng(7).normal(size=(1, 3, 16, 16)).astype(np.float32)
    expected = OnnxruntimeModel(model.SerializeToString(), name="cnn").run({"image": image})
    actual = load(param, weights, config).run({"image": image})
    for want, got in zip(expected, actual, strict=True):
        assert want.shape == got.shape
        assert cosine(want, got) >= 0.9999
    again = export_ncnn(tmp_path / "cnn.onnx", tmp_path / "b")
    assert [p.read_bytes() for p in again] == [param.read_bytes(), weights.read_bytes()]
    assert str(tmp_path) not in param.read_text()


def test_dynamic_length_export(tmp_path: Path) -> None:
    model = spectrogram_like()
    onnx.save(model, tmp_path / "mel.onnx")
    long, short = {"audio": [1, 4000]}, {"audio": [1, 1000]}
    param, weights = export_ncnn(tmp_path / "mel.onnx", tmp_path, long, alt_shapes=short)
    config = io_config(model, long, short)
    assert config["inputs"][0]["shape"] == [1, -1]
    assert config["outputs"][0]["shape"] == [1, 1, -1, 4]
    ncnn_model = load(param, weights, config)
    reference = OnnxruntimeModel(model.SerializeToString(), name="mel")
    for samples in (1000, 2500, 4000):  # 2500 was never seen by the converter
        audio = np.random.default_rng(samples).normal(size=(1, samples)).astype(np.float32)
        (want,) = reference.run({"audio": audio})
        (got,) = ncnn_model.run({"audio": audio})
        assert got.shape == want.shape == (1, 1, (samples - 64) // 32 + 1, 4)
        assert cosine(want, got) >= 0.9999


def test_workarounds_are_applied_to_a_copy() -> None:
    model = spectrogram_like()
    shapes = {"audio": [1, 4000]}
    prepared = prepare_for_pnnx(model, shapes)
    ops = [node.op_type for node in prepared.graph.node]
    assert "Min" not in ops
    assert ops.count("Identity") == 1
    reduce_max = next(node for node in prepared.graph.node if node.op_type == "ReduceMax")
    assert [a.name for a in reduce_max.attribute] == ["keepdims"]
    dims = prepared.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 4000]
    assert "Min" in [node.op_type for node in model.graph.node]  # the original is untouched
    pad = next(
        node
        for node in prepare_for_pnnx(residual_cnn(), {"image": [1, 3, 16, 16]}).graph.node
        if node.op_type == "Pad"
    )
    assert [(a.name, a.s) for a in pad.attribute] == [("mode", b"constant")]


@pytest.mark.parametrize(
    ("axes", "keepdims", "dropped"),
    [([0, 1, 2, 3], 0, True), ([1, 2, 3], 1, True), ([1, 2, 3], 0, False), ([2, 3], 1, False)],
)
def test_reduce_over_all_but_a_unit_batch_is_a_full_reduce(
    axes: list[int], keepdims: int, dropped: bool
) -> None:
    model = spectrogram_like()
    reduce_max = next(node for node in model.graph.node if node.op_type == "ReduceMax")
    reduce_max.ClearField("attribute")
    reduce_max.attribute.extend(
        [helper.make_attribute("axes", axes), helper.make_attribute("keepdims", keepdims)]
    )
    prepared = prepare_for_pnnx(model, {"audio": [1, 4000]})
    node = next(node for node in prepared.graph.node if node.op_type == "ReduceMax")
    assert ("axes" not in [a.name for a in node.attribute]) is dropped


def test_operator_pnnx_cannot_convert_fails_loudly(tmp_path: Path) -> None:
    node = helper.make_node("ReduceMax", ["x"], ["y"], axes=[1, 2], keepdims=0)
    graph = helper.make_graph(
        [node],
        "partial_reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "reduce.onnx")
    with pytest.raises(ToolError, match=r"ncnn lacks: \['ReduceMax'\]"):
        export_ncnn(tmp_path / "reduce.onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pnnx_crash_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crash = tmp_path / "pnnx"
    crash.write_text("#!/bin/sh\necho 'todo FancyOp'\nkill -SEGV $$\n")
    crash.chmod(0o755)
    monkeypatch.setattr(ncnn_export, "pnnx_binary", lambda: crash)
    onnx.save(residual_cnn(), tmp_path / "cnn.onnx")
    with pytest.raises(
        ToolError, match=r"pnnx failed \(exit -11\); unsupported: \['todo FancyOp'\]"
    ):
        export_ncnn(tmp_path / "cnn.onnx", tmp_path / "out")


def test_disagreeing_ncnn_model_is_not_shipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_run = ncnn_export.run_pnnx

    def corrupting_run(*args: object) -> None:
        real_run(*args)
        weights = Path(args[-1]) / "model.ncnn.bin"
        data = np.frombuffer(weights.read_bytes(), np.float32).copy()
        half = data[: len(data) // 2]
        half[half != 0] *= -1.0  # flip weights, keep the zero per-blob format tags
        weights.write_bytes(data.tobytes())

    monkeypatch.setattr(ncnn_export, "run_pnnx", corrupting_run)
    onnx.save(residual_cnn(), tmp_path / "cnn.onnx")
    with pytest.raises(ToolError, match="ncnn disagrees with onnxruntime"):
        export_ncnn(tmp_path / "cnn.onnx", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_pnnx_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolError, match="pip install --no-deps pnnx"):
        ncnn_export.pnnx_binary()


def test_dynamic_input_needs_a_shape(tmp_path: Path) -> None:
    onnx.save(spectrogram_like(), tmp_path / "mel.onnx")
    with pytest.raises(ToolError, match="dynamic size"):
        export_ncnn(tmp_path / "mel.onnx", tmp_path)
    with pytest.raises(ToolError, match="no inputs"):
        export_ncnn(tmp_path / "mel.onnx", tmp_path, {"wave": [1, 100]})


@pytest.mark.slow
def test_real_face_detector_converts_and_agrees_on_a_photo(tmp_path: Path) -> None:
    model = import_tflite(source_path("face_detection_short_range.tflite"))
    onnx.save(model, tmp_path / "detector.onnx")
    param, weights = export_ncnn(tmp_path / "detector.onnx", tmp_path)
    config = io_config(model)
    photo = Image.open(source_path("astronaut.png")).convert("RGB").resize((128, 128))
    tensor = (np.asarray(photo, np.float32)[None] / 127.5 - 1.0).astype(np.float32)
    expected = OnnxruntimeModel(model.SerializeToString(), name="detector").run({"input": tensor})
    actual = load(param, weights, config).run({"input": tensor})
    for want, got in zip(expected, actual, strict=True):
        assert want.shape == got.shape
        assert cosine(want, got) >= 0.9999
    # The photo has one face: both backends find the same best anchor.
    assert int(np.argmax(expected[1])) == int(np.argmax(actual[1]))
    assert expected[1].max() > 0

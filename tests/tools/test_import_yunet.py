"""The YuNet importer: int8 block-quantized weights folded to fp32, any input size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image

from tools.compact.errors import ToolError
from tools.compact.importers.dequantize import dequantize
from tools.compact.importers.yunet import OUTPUTS, import_yunet
from tools.compact.pack.sources import source_path

ort = pytest.importorskip("onnxruntime")
SOURCE = "face_detection_yunet_2023mar_int8bq.onnx"


def runnable_original() -> onnx.ModelProto:
    """The source file as onnxruntime accepts it, any input size.

    onnxruntime refuses a ``block_size`` on a one-element (per-tensor) scale; for such a
    scale it means nothing, so dropping it changes no value.
    """
    model = onnx.load(source_path(SOURCE))
    shapes = {init.name: list(init.dims) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and shapes[node.input[1]] == [1]:
            kept = [a for a in node.attribute if a.name != "block_size"]
            del node.attribute[:]
            node.attribute.extend(kept)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in model.graph.output:
        output.type.tensor_type.shape.dim[1].dim_param = "cells"
    del model.graph.value_info[:]
    return model


def session(model: onnx.ModelProto) -> object:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    # no graph rewrites: both graphs then run the same float kernels in the same order
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options)


@pytest.mark.parametrize("size", [(640, 384), (960, 544)])
def test_the_imported_graph_computes_exactly_what_the_original_does(
    size: tuple[int, int],
) -> None:
    photo = Image.open(source_path("t1.jpg")).convert("RGB").resize(size)
    blob = np.asarray(photo, np.float32)[..., ::-1].transpose(2, 0, 1)[np.newaxis].copy()
    imported = import_yunet(source_path(SOURCE))
    assert not any(node.op_type == "DequantizeLinear" for node in imported.graph.node)
    expected = session(runnable_original()).run(list(OUTPUTS), {"input": blob})  # type: ignore[attr-defined]
    actual = session(imported).run(list(OUTPUTS), {"input": blob})  # type: ignore[attr-defined]
    for a, b in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(a, b)
    cells = (size[0] // 8) * (size[1] // 8)
    assert actual[0].shape == (1, cells, 1)  # cls_8 for every stride-8 cell


def test_every_weight_is_float32_now() -> None:
    imported = import_yunet(source_path(SOURCE))
    kinds = {numpy_helper.to_array(init).dtype for init in imported.graph.initializer}
    assert np.dtype(np.float32) in kinds
    assert not kinds & {np.dtype(np.int8), np.dtype(np.uint8)}
    dims = imported.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [1, 3, "height", "width"]


def test_dequantize_per_tensor_axis_and_block() -> None:
    q = np.array([[-2, 0, 4, 6], [1, 3, -1, 5]], dtype=np.int8)
    np.testing.assert_array_equal(
        dequantize(q, np.array([0.5], np.float32), np.array([2], np.int8)),
        (q.astype(np.float32) - 2) * 0.5,
    )
    per_row = dequantize(q, np.array([1.0, 2.0], np.float32), None, axis=0)
    np.testing.assert_array_equal(per_row, q * np.array([[1.0], [2.0]], np.float32))
    blocks = dequantize(
        q, np.array([[1.0, 0.5], [2.0, 4.0]], np.float32), np.zeros((2, 2), np.int8), 1, 2
    )
    np.testing.assert_array_equal(
        blocks, q * np.array([[1, 1, 0.5, 0.5], [2, 2, 4, 4]], np.float32)
    )


def test_a_file_that_is_not_yunet_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "yunet.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ToolError, match="not an ONNX model"):
        import_yunet(garbage)
    other = tmp_path / "other.onnx"
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "other",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), other)
    with pytest.raises(ToolError, match="not YuNet"):
        import_yunet(other)

"""The SFace importer: the fp32 graph computes what OpenCV Zoo's int8 file computes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from custom_components.compact_ai.engine.face.align import ARCFACE_112, align_face
from custom_components.compact_ai.engine.face.image import decode_image
from tools.compact.errors import ToolError
from tools.compact.importers.dequantize import dequantize
from tools.compact.importers.sface import import_sface
from tools.compact.pack.sources import SFACE_SOURCE, source_path

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def source() -> Path:
    return source_path(SFACE_SOURCE)


@pytest.fixture(scope="module")
def model(source: Path) -> onnx.ModelProto:
    return import_sface(source)


def _session(model: onnx.ModelProto) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _as_shipped(source: Path) -> onnx.ModelProto:
    """The source unchanged but for the 29 float inputs no node reads (else ORT refuses it)."""
    original = onnx.load(source)
    read = {name for node in original.graph.node for name in node.input}
    initializers = {init.name for init in original.graph.initializer}
    inputs = [v for v in original.graph.input if v.name == "data" or v.name in read - initializers]
    assert len(original.graph.input) - len(inputs) >= 29
    del original.graph.input[:]
    original.graph.input.extend(inputs)
    return original


def _real_chips() -> np.ndarray:
    """ArcFace chips of every face the engine finds in the sample photos (RGB 0..255)."""
    from tools.compact.evaluate.verify import load_face_pipeline

    pipeline, _ = load_face_pipeline("reference", None, "onnxruntime", "full")
    chips = []
    for name in ("astronaut.png", "t1.jpg", "Tom_Hanks_54745.png"):
        image = decode_image(source_path(name).read_bytes())
        chips += [align_face(image, d.keypoints, ARCFACE_112) for d in pipeline.detect(image)]
    assert len(chips) >= 6
    return np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32)


def test_graph_is_plain_fp32(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops == {
        "Sub": 1,
        "Mul": 1,
        "Conv": 27,
        "BatchNormalization": 29,
        "PRelu": 27,
        "Flatten": 1,
        "Gemm": 1,
    }
    assert [v.name for v in model.graph.input] == ["chip"]
    assert [v.name for v in model.graph.output] == ["embedding"]
    assert all(init.data_type == TensorProto.FLOAT for init in model.graph.initializer)
    mean = next(i for i in model.graph.initializer if i.name == "scalar_op1")
    np.testing.assert_array_equal(numpy_helper.to_array(mean), np.full((1, 3, 1, 1), 127.5))


def test_embeddings_equal_the_original_on_real_chips(source: Path, model: onnx.ModelProto) -> None:
    chips = _real_chips()
    (ours,) = _session(model).run(None, {"chip": chips})
    original = _session(_as_shipped(source))
    theirs = np.concatenate([original.run(None, {"data": c[np.newaxis]})[0] for c in chips])
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()
    # different faces give different embeddings (the check above is not about constants)
    assert (ours[0] @ ours[1]) / np.linalg.norm(ours[0]) / np.linalg.norm(ours[1]) < 0.9


def test_a_wrong_file_is_refused(tmp_path: Path, source: Path) -> None:
    damaged = tmp_path / SFACE_SOURCE
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ToolError, match="is not SFace's"):
        import_sface(damaged)
    with pytest.raises(ToolError, match="cannot read"):
        import_sface(tmp_path / "missing.onnx")


@pytest.mark.parametrize(("axis", "block"), [(0, 2), (1, 3), (1, 0)])
def test_dequantize_matches_onnx(axis: int, block: int) -> None:
    rng = np.random.default_rng(axis + block)
    quantized = rng.integers(-128, 128, (4, 7), dtype=np.int8)
    if block:
        shape = [4, 7]
        shape[axis] = -(-shape[axis] // block)
    else:
        shape = [quantized.shape[axis]]
    scale = rng.uniform(0.01, 0.1, shape).astype(np.float32)
    zero = rng.integers(-5, 5, shape, dtype=np.int8)
    node = helper.make_node(
        "DequantizeLinear",
        ["q", "s", "z"],
        ["y"],
        axis=axis,
        **({"block_size": block} if block else {}),
    )
    graph = helper.make_graph(
        [node],
        "dq",
        [
            helper.make_tensor_value_info("q", TensorProto.INT8, quantized.shape),
            helper.make_tensor_value_info("s", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("z", TensorProto.INT8, shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    reference = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (expected,) = ReferenceEvaluator(reference).run(None, {"q": quantized, "s": scale, "z": zero})
    np.testing.assert_allclose(dequantize(quantized, scale, zero, axis, block), expected, rtol=1e-6)

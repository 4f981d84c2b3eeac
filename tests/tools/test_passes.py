"""Graph passes keep the checker happy and the outputs unchanged."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest

from tests.tools.synthetic import folding_net, mixed_net
from tools.compact.compress.graph import Graph
from tools.compact.compress.measure import fidelity, run_outputs
from tools.compact.compress.passes import (
    FP16_MIN_ELEMENTS,
    cancel_transposes,
    simplify,
    store_weights_fp16,
)

pytest.importorskip("onnxruntime")


def _feeds(seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((4, 3, 16, 16)).astype(np.float32)} for _ in range(2)]


def _assert_same_outputs(a: onnx.ModelProto, b: onnx.ModelProto) -> None:
    feeds = _feeds()
    fid = fidelity(run_outputs(b, feeds), run_outputs(a, feeds))
    assert fid.cosine_min >= 0.99999
    assert fid.max_abs <= 1e-4


def test_folds_batchnorm_affine_identity_transposes_and_constants() -> None:
    model = folding_net()
    simple = simplify(model)
    onnx.checker.check_model(simple, full_check=True)
    before = Counter(node.op_type for node in model.graph.node)
    after = Counter(node.op_type for node in simple.graph.node)
    assert before["BatchNormalization"] == 1
    assert before["Identity"] == 2
    assert after == {"Conv": 3, "Relu": 2}
    assert [o.name for o in simple.graph.output] == [o.name for o in model.graph.output]
    _assert_same_outputs(model, simple)


def test_non_cancelling_transposes_are_merged_into_one() -> None:
    net = onnx.helper
    nodes = [
        net.make_node("Transpose", ["x"], ["t1"], perm=[0, 2, 3, 1]),
        net.make_node("Transpose", ["t1"], ["t2"], perm=[0, 2, 1, 3]),
        net.make_node("Relu", ["t2"], ["y"]),
    ]
    graph = net.make_graph(
        nodes,
        "g",
        [net.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 3, 16, 16])],
        [net.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    model = net.make_model(graph, opset_imports=[net.make_opsetid("", 17)])
    view = Graph(onnx.ModelProto.FromString(model.SerializeToString()))
    assert cancel_transposes(view) == 1
    assert [n.op_type for n in view.graph.node] == ["Transpose", "Relu"]
    _assert_same_outputs(model, view.model)


def test_model_without_foldable_patterns_is_unchanged_in_meaning() -> None:
    model = mixed_net()
    simple = simplify(model)
    assert len(simple.graph.node) == len(model.graph.node)
    _assert_same_outputs(model, simple)


def test_fp16_storage_halves_the_weights_and_keeps_float32_arithmetic() -> None:
    model = mixed_net()
    stored = store_weights_fp16(model)
    onnx.checker.check_model(stored, full_check=True)
    weights = {t.name: t for t in model.graph.initializer}
    halved = {
        t.name.removesuffix(".fp16") for t in stored.graph.initializer if t.name.endswith(".fp16")
    }
    big = {
        n
        for n, t in weights.items()
        if t.data_type == onnx.TensorProto.FLOAT and np.prod(t.dims) >= FP16_MIN_ELEMENTS
    }
    assert halved == big
    assert big
    kept = {t.name for t in stored.graph.initializer} - {f"{n}.fp16" for n in halved}
    assert kept == set(weights) - big  # small tensors and the int64 pads stay as they were
    assert [i.type for i in stored.graph.input] == [i.type for i in model.graph.input]
    assert len(stored.SerializeToString()) < 0.6 * len(model.SerializeToString())
    feeds = _feeds()
    fid = fidelity(run_outputs(stored, feeds), run_outputs(model, feeds))
    assert fid.cosine_min >= 0.9999
    assert fid.max_abs > 0


def test_fp16_storage_of_a_detector_with_fp16_weights_is_exact() -> None:
    from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack

    model = onnx.load(build_reference_pack() / REFERENCE_TIER / "face_detector.onnx")
    rng = np.random.default_rng(0)
    feeds = [{"input": rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)}]
    stored = store_weights_fp16(model)
    for ours, theirs in zip(run_outputs(stored, feeds), run_outputs(model, feeds), strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.slow
def test_real_dlib_embedder_is_unchanged() -> None:
    from tools.compact.importers.dlib_resnet import import_dlib_resnet
    from tools.compact.pack.sources import source_path

    model = import_dlib_resnet(source_path("dlib_face_recognition_resnet_model_v1.dat"))
    simple = simplify(model)
    onnx.checker.check_model(simple)
    rng = np.random.default_rng(0)
    feeds = [{"chip": rng.uniform(0, 255, (2, 3, 150, 150)).astype(np.float32)}]
    fid = fidelity(run_outputs(simple, feeds), run_outputs(model, feeds))
    assert fid.cosine_min >= 0.99999


def test_prelu_as_relu_is_exact_for_any_slope() -> None:
    from onnx import TensorProto, helper, numpy_helper

    from tools.compact.compress.passes import prelu_as_relu

    slope = np.array([-0.8, 0.0, 0.25, 1.1], np.float32).reshape(4, 1, 1)  # SFace has such
    weight = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["c", "a"], ["y"], name="act"),
        ],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4, 16, 16])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(slope, "a")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    rewritten = prelu_as_relu(model)
    ops = Counter(node.op_type for node in rewritten.graph.node)
    assert "PRelu" not in ops and ops["Relu"] == 2 and ops["Neg"] == 1
    _assert_same_outputs(model, rewritten)
    feeds = _feeds()
    (expected,), (actual,) = run_outputs(model, feeds[:1]), run_outputs(rewritten, feeds[:1])
    np.testing.assert_allclose(actual, expected, atol=1e-5)

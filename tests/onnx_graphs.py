"""Small ONNX graphs built in code, for backend and converter tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions

SIZE = 16


def residual_cnn(seed: int = 0, width: int = 8) -> onnx.ModelProto:
    """Conv/ReLU/Pad/Conv with a residual Add, MaxPool, global pool and a bias-free Gemm.

    Input ``image`` (batch, 3, 16, 16); outputs ``embedding`` (batch, 10) and ``features``
    (batch, width, 8, 8). The Pad has no ``mode`` attribute and the Gemm no bias, the two forms
    pnnx needs help with.
    """
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    initializers = [
        weight("w1", width, 3, 3, 3),
        weight("b1", width),
        weight("w2", width, width, 3, 3),
        weight("b2", width),
        weight("wf", width, 10),
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Pad", ["r1", "pads"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"]),
        helper.make_node("Add", ["c2", "r1"], ["a1"]),
        helper.make_node("MaxPool", ["a1"], ["features"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["features"], ["g1"]),
        helper.make_node("Flatten", ["g1"], ["f1"]),
        helper.make_node("Gemm", ["f1", "wf"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "residual_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 10]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", width, 8, 8]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def spectrogram_like(seed: int = 0) -> onnx.ModelProto:
    """A strided 1-D filter bank over audio of any length, clipped like openWakeWord's mel.

    Input ``audio`` (batch, samples); output ``mel`` (batch, 1, frames, 4). It holds a
    ``Min`` against +inf and a ``ReduceMax`` over every axis, two forms pnnx cannot take.
    """
    rng = np.random.default_rng(seed)
    initializers = [
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes"),
        numpy_helper.from_array(rng.normal(0, 0.1, (4, 1, 1, 64)).astype(np.float32), "bank"),
        numpy_helper.from_array(np.array([np.inf], np.float32), "inf"),
        numpy_helper.from_array(np.array([1e-6], np.float32), "floor"),
        numpy_helper.from_array(np.array([8.0], np.float32), "range"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "axes"], ["x4"]),
        helper.make_node("Conv", ["x4", "bank"], ["frames"], strides=[1, 32]),
        helper.make_node("Mul", ["frames", "frames"], ["power"]),
        helper.make_node("Min", ["power", "inf"], ["bounded"]),
        helper.make_node("Max", ["bounded", "floor"], ["positive"]),
        helper.make_node("Log", ["positive"], ["log"]),
        helper.make_node("ReduceMax", ["log"], ["peak"], axes=[0, 1, 2, 3], keepdims=0),
        helper.make_node("Sub", ["peak", "range"], ["low"]),
        helper.make_node("Max", ["log", "low"], ["clipped"]),
        helper.make_node("Transpose", ["clipped"], ["mel"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "spectrogram_like",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", 1, "frames", 4])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def run_on_ncnn(
    param: bytes, weights: bytes, config: dict[str, object], images: np.ndarray
) -> np.ndarray:
    """Run :func:`residual_cnn` files (``image`` in) on ncnn; return the first output."""
    model = NcnnModel(
        param,
        weights,
        name="test",
        inputs=tensor_specs(config, "inputs", "test"),
        outputs=tensor_specs(config, "outputs", "test"),
        options=NcnnOptions(),
    )
    return model.run({"image": images})[0]

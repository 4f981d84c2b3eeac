"""Small synthetic ONNX graphs with random weights for the compression tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """Builds an NCHW float graph node by node with seeded random weights."""

    def __init__(self, seed: int = 0, channels: int = 3, size: int = 16) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.input = helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, ["batch", channels, size, size]
        )
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array: np.ndarray, prefix: str = "c") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, group: int = 1, stride: int = 1) -> str:
        scale = np.sqrt(2.0 / (cin // group * k * k))
        w = (self.rng.standard_normal((cout, cin // group, k, k)) * scale).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        return self.op(
            "Conv",
            [x, self.const(w, "w"), self.const(b, "b")],
            kernel_shape=[k, k],
            pads=[k // 2] * 4,
            strides=[stride, stride],
            group=group,
        )

    def batchnorm(self, x: str, channels: int, **attrs: Any) -> str:
        """BatchNormalization with random scale, bias, mean and (positive) variance."""
        rng = self.rng
        stats = [
            rng.random(channels) + 0.5,
            rng.standard_normal(channels),
            rng.standard_normal(channels),
            rng.random(channels) + 0.1,
        ]
        return self.op(
            "BatchNormalization", [x, *(self.const(s.astype(np.float32)) for s in stats)], **attrs
        )

    def relu(self, x: str) -> str:
        return self.op("Relu", [x])

    def model(self, outputs: dict[str, list[Any]]) -> onnx.ModelProto:
        values = [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs.items()
        ]
        graph = helper.make_graph(self.nodes, "synthetic", [self.input], values, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def mixed_net(seed: int = 0) -> onnx.ModelProto:
    """Residual Add, depthwise conv, channel zero-extension, Concat, PRelu, Mul, GAP + Gemm."""
    net = Net(seed)
    rng = net.rng
    a = net.relu(net.conv("x", 3, 16))
    r = net.conv(net.relu(net.conv(a, 16, 16)), 16, 16)
    a = net.relu(net.op("Add", [r, a]))  # residual
    d = net.relu(net.conv(a, 16, 16, group=16))  # depthwise
    p = net.conv(d, 16, 24, k=1)
    slope = (rng.random((24, 1, 1)) * 0.3).astype(np.float32)
    p = net.op("PRelu", [p, net.const(slope)])
    scale = (rng.random((1, 24, 1, 1)) + 0.5).astype(np.float32)
    p = net.op("Mul", [p, net.const(scale)])
    pads = net.const(np.array([0, 0, 0, 0, 0, 8, 0, 0], np.int64))
    z = net.op("Pad", [a, pads])  # 16 -> 24 channels, the new ones are zeros
    s = net.relu(net.op("Add", [z, p]))
    left = net.relu(net.conv(s, 24, 8))
    right = net.relu(net.conv(s, 24, 12, k=1))
    c = net.op("Concat", [left, right], axis=1)
    c = net.relu(net.conv(c, 20, 32, stride=2))
    g = net.op("Flatten", [net.op("GlobalAveragePool", [c])], axis=1)
    w = (rng.standard_normal((32, 10)) * 0.3).astype(np.float32)
    out = net.op("Gemm", [g, net.const(w), net.const(np.zeros(10, np.float32))])
    return net.model({out: ["batch", 10]})


def folding_net(seed: int = 0) -> onnx.ModelProto:
    """Conv + BatchNormalization, Conv + Mul/Add constants, Identity, Transpose pairs, Constant."""
    net = Net(seed)
    rng = net.rng
    c = net.conv("x", 3, 8)
    a = net.relu(net.batchnorm(c, 8, epsilon=1e-3))
    c = net.conv(a, 8, 8, k=1)
    c = net.op("Mul", [c, net.const((rng.random((8, 1, 1)) + 0.5).astype(np.float32))])
    c = net.op("Add", [c, net.const(rng.standard_normal((1, 8, 1, 1)).astype(np.float32))])
    c = net.op("Identity", [net.relu(c)])
    t = net.op("Transpose", [c], perm=[0, 2, 3, 1])
    t = net.op("Transpose", [t], perm=[0, 3, 1, 2])
    # a weight computed from constants: Transpose of an initializer scaled by a Constant node
    raw = (rng.standard_normal((3, 3, 8, 4)) * 0.2).astype(np.float32)  # HWIO
    weight = net.op("Transpose", [net.const(raw)], perm=[3, 2, 0, 1])
    two = net.op("Constant", [], value=helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]))
    weight = net.op("Mul", [weight, two])
    out = net.op("Conv", [t, weight], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    out = net.op("Identity", [out])
    return net.model({out: ["batch", 4, 16, 16]})


def batchnorm_net(seed: int = 0) -> onnx.ModelProto:
    """Conv -> BatchNormalization (not folded) -> Relu -> Conv, and a conv that is an output."""
    net = Net(seed)
    c = net.conv("x", 3, 12)
    bn = net.batchnorm(c, 12)
    out = net.conv(net.relu(bn), 12, 6)
    return net.model({out: ["batch", 6, 16, 16]})

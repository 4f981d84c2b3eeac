"""An ONNX embedder as a JAX function, so that distillation can train its weights in place.

Only the operators our embedders have after import and pruning are known; any other is refused
by name. The weights of Conv, Gemm, PRelu and BatchNormalization's scale and shift are the
trainable parameters; everything else (input scaling, running statistics, shapes) stays
constant, and batch normalization keeps its inference form. ``to_onnx`` writes trained weights
back into a copy of the graph, so the student goes on through the same quantization, ncnn
export and measurement as any other candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tools.compact.errors import ToolError

Arrays = dict[str, Any]  # name -> jax or numpy array
# operator -> the input positions that are trainable weights
TRAINABLE: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "Gemm": (1, 2),
    "PRelu": (1,),
    "BatchNormalization": (1, 2),
}


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _depthwise(x: Any, w: Any, strides: list[int], pads: list[int]) -> Any:
    """Convolve depthwise as a sum of shifted products: XLA's grouped convolution is ~3x slower."""
    import jax.numpy as jnp

    x = jnp.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    kh, kw = w.shape[2:]
    height = (x.shape[2] - kh) // strides[0] + 1
    width = (x.shape[3] - kw) // strides[1] + 1
    y = 0
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + (height - 1) * strides[0] + 1, strides[0])
            cols = slice(j, j + (width - 1) * strides[1] + 1, strides[1])
            y = y + x[:, :, rows, cols] * w[:, 0, i, j].reshape(1, -1, 1, 1)
    return y


def _conv(node: onnx.NodeProto, x: Any, w: Any, b: Any = None) -> Any:
    from jax import lax

    a = _attributes(node)
    dims = len(w.shape) - 2
    pads = a.get("pads", [0] * 2 * dims)
    group = a.get("group", 1)
    if (
        dims == 2
        and group > 1
        and group == x.shape[1] == w.shape[0]
        and a.get("dilations", [1, 1]) == [1, 1]
    ):
        y = _depthwise(x, w, a.get("strides", [1, 1]), pads)
        return y if b is None else y + b.reshape(1, -1, 1, 1)
    if dims == 2 and group == 1 and w.shape[2:] == (1, 1) and not any(pads):
        import jax.numpy as jnp

        step = a.get("strides", [1, 1])
        y = jnp.einsum("nchw,oc->nohw", x[:, :, :: step[0], :: step[1]], w[:, :, 0, 0])
        return y if b is None else y + b.reshape(1, -1, 1, 1)
    y = lax.conv_general_dilated(
        x,
        w,
        window_strides=a.get("strides", [1] * dims),
        padding=[(pads[i], pads[i + dims]) for i in range(dims)],
        rhs_dilation=a.get("dilations", [1] * dims),
        feature_group_count=a.get("group", 1),
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
    )
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _batch_norm(node: onnx.NodeProto, x: Any, *stats: Any) -> Any:
    import jax.numpy as jnp

    scale, shift, mean, var = (s.reshape((1, -1) + (1,) * (x.ndim - 2)) for s in stats)
    epsilon = _attributes(node).get("epsilon", 1e-5)
    return (x - mean) / jnp.sqrt(var + epsilon) * scale + shift


def _gemm(node: onnx.NodeProto, a: Any, b: Any, c: Any = None) -> Any:
    at = _attributes(node)
    a = a.T if at.get("transA", 0) else a
    b = b.T if at.get("transB", 0) else b
    y = at.get("alpha", 1.0) * (a @ b)
    return y if c is None else y + at.get("beta", 1.0) * c


def _flatten(node: onnx.NodeProto, x: Any) -> Any:
    axis = _attributes(node).get("axis", 1)
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _reshape(node: onnx.NodeProto, x: Any, shape: Any) -> Any:
    shape = [x.shape[i] if s == 0 else int(s) for i, s in enumerate(np.asarray(shape))]
    return x.reshape(shape)


def _prelu(node: onnx.NodeProto, x: Any, slope: Any) -> Any:
    import jax.numpy as jnp

    return jnp.where(x >= 0, x, slope * x)


def _relu(node: onnx.NodeProto, x: Any) -> Any:
    import jax.numpy as jnp

    return jnp.maximum(x, 0)


OPERATORS: dict[str, Callable[..., Any]] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "Gemm": _gemm,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "PRelu": _prelu,
    "Relu": _relu,
    "Neg": lambda node, x: -x,
    "Add": lambda node, a, b: a + b,
    "Sub": lambda node, a, b: a - b,
    "Mul": lambda node, a, b: a * b,
}


class JaxGraph:
    """A single-input, single-output ONNX graph evaluated with JAX."""

    def __init__(self, model: onnx.ModelProto) -> None:
        """Split ``model``'s initializers into trainable parameters and constants."""
        unknown = sorted({n.op_type for n in model.graph.node} - OPERATORS.keys())
        if unknown:
            raise ToolError(f"distillation cannot run these operators: {', '.join(unknown)}")
        self.model = model
        initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        trainable = {
            node.input[index]
            for node in model.graph.node
            for index in TRAINABLE.get(node.op_type, ())
            if index < len(node.input) and node.input[index] in initializers
        }
        self.params: Arrays = {
            name: initializers[name].astype(np.float32) for name in sorted(trainable)
        }
        self.constants: Arrays = {k: v for k, v in initializers.items() if k not in trainable}
        inputs = [i.name for i in model.graph.input if i.name not in initializers]
        if len(inputs) != 1 or len(model.graph.output) != 1:
            raise ToolError("distillation needs a graph with one input and one output")
        self.input, self.output = inputs[0], model.graph.output[0].name

    def apply(self, params: Mapping[str, Any], x: Any) -> Any:
        """Run the graph on ``x`` with ``params`` (traceable by ``jax.jit`` and ``jax.grad``)."""
        values: Arrays = {**self.constants, **params, self.input: x}
        for node in self.model.graph.node:
            args = [values[name] if name else None for name in node.input]
            values[node.output[0]] = OPERATORS[node.op_type](node, *args)
        return values[self.output]

    def to_onnx(self, params: Mapping[str, Any]) -> onnx.ModelProto:
        """Return a copy of the graph with ``params`` as its weights."""
        model = onnx.ModelProto()
        model.CopyFrom(self.model)
        for initializer in model.graph.initializer:
            if initializer.name in params:
                array = np.asarray(params[initializer.name], dtype=np.float32)
                initializer.CopyFrom(numpy_helper.from_array(array, initializer.name))
        return model

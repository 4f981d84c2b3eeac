"""Import dlib's ResNet face embedder (``dlib_face_recognition_resnet_model_v1.dat``) as ONNX.

The ``.dat`` file is a serialized ``anet_type`` (dlib's ``face_recognition.cpp``): a ResNet-29
with ``ares``/``ares_down`` blocks whose residual adds zero-extend the smaller tensor. The file is
parsed with numpy only (no dlib): the expected topology is data (``TOPOLOGY``) and every version,
shape and parameter count in the file is checked against it. Each ``affine`` layer is folded into
the convolution before it, so the graph holds Conv, Relu, MaxPool, AveragePool, Pad, Add,
GlobalAveragePool, Flatten and Gemm. Input ``chip`` is float32 [N, 3, 150, 150] RGB in 0..255;
output ``descriptor`` is float32 [N, 128], unnormalized like dlib's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tools.compact.errors import ToolError
from tools.compact.importers.dlib_format import DlibReader

OPSET = 17
IR_VERSION = 8  # the IR of ONNX 1.12, which introduced opset 17; loads in any onnxruntime >= 1.12
CHIP_SIZE = 150
T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """One wrapper of the dlib net: kind (dlib layer), readable name, and its parameters."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, tag, skip, fc
    name: str
    args: tuple[int, ...] = ()  # con: (filters, kernel, stride); pools: (kernel, stride); ...


def _block(prefix: str, filters: int, down: bool) -> list[Spec]:
    """Return an ``ares``/``ares_down`` block in forward order (input to output)."""
    p = f"{prefix}."
    specs = [
        Spec("tag", p + "tag1", (1,)),
        Spec("con", p + "conv_a", (filters, 3, 2 if down else 1)),
        Spec("affine", p + "affine_a"),
        Spec("relu", p + "relu_a"),
        Spec("con", p + "conv_b", (filters, 3, 1)),
        Spec("affine", p + "affine_b"),
    ]
    if down:
        specs += [
            Spec("tag", p + "tag2", (2,)),
            Spec("skip", p + "skip1", (1,)),
            Spec("avg_pool", p + "pool", (2, 2)),
        ]
    return [*specs, Spec("add_prev", p + "add", (2 if down else 1,)), Spec("relu", p + "relu")]


# dlib's alevel4 .. alevel0 in forward order: (level, filters, ares_down blocks, ares blocks)
_LEVELS = ((4, 32, 0, 3), (3, 64, 1, 3), (2, 128, 1, 2), (1, 256, 1, 2), (0, 256, 1, 0))


def _topology() -> tuple[Spec, ...]:
    """Return ``anet_type`` in forward order; levels are named after dlib's ``alevel<i>``."""
    specs = [
        Spec("con", "conv1", (32, 7, 2)),
        Spec("affine", "affine1"),
        Spec("relu", "relu1"),
        Spec("max_pool", "pool1", (3, 2)),
    ]
    for level, filters, down, plain in _LEVELS:
        for index, is_down in enumerate([True] * down + [False] * plain):
            specs += _block(f"level{level}.block{index}", filters, is_down)
    specs += [Spec("avg_pool", "global_pool", (0, 1)), Spec("fc", "fc", (128,))]
    return tuple(specs)


TOPOLOGY: tuple[Spec, ...] = _topology()  # forward order; the file stores it outer (fc) first
_WRAPPERS = ("tag", "skip")  # add_tag_layer / add_skip_layer: a version int only


@dataclass
class _Layer:
    """A parsed layer with its output shape (C, H, W) and its float32 parameters."""

    spec: Spec
    shape: tuple[int, int, int]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    pad: int = 0


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - kernel) // stride


def _params(r: DlibReader, *sizes: int) -> list[np.ndarray]:
    """Read a params tensor holding exactly ``sizes`` floats, split into those parts."""
    start = r.pos
    params = r.tensor()
    if params.size != sum(sizes):
        raise r.error(f"parameter count is {params.size}, expected {sum(sizes)}", start)
    return np.split(params, np.cumsum(sizes)[:-1])


def _read_details(r: DlibReader, spec: Spec, shape: tuple[int, int, int]) -> _Layer:
    """Read one layer's detail record; ``shape`` is its input (C, H, W)."""
    c, h, w = shape
    if spec.kind == "con":
        filters, kernel, stride = spec.args
        pad = 0 if stride != 1 else kernel // 2  # dlib's default, which anet_type uses
        version = r.check("version", r.string, "con_4", "con_5", "con_6")
        start = r.pos
        params = r.tensor()
        geometry = (filters, kernel, kernel, stride, stride, pad, pad)
        r.check("num_filters, nr, nc, strides, paddings", lambda: r.ints(3, 4), geometry)
        r.check("filters alias", r.alias, (filters, c, kernel, kernel))
        bias_alias = r.alias()
        _ = [r.real() for _ in range(4)]  # learning-rate and weight-decay multipliers
        use_bias = r.boolean() if version != "con_4" else True
        if version == "con_6" and r.boolean():
            raise r.error("con_ with a fused relu is not supported")
        if bias_alias != ((1, filters, 1, 1) if use_bias else (0, 0, 0, 0)):
            raise r.error(f"bias alias {bias_alias} does not match use_bias={use_bias}")
        size = filters * c * kernel * kernel
        if params.size != size + filters * use_bias:
            expected = size + filters * use_bias
            raise r.error(f"parameter count is {params.size}, expected {expected}", start)
        bias = params[size:] if use_bias else np.zeros(filters, np.float32)
        weights = params[:size].reshape(filters, c, kernel, kernel)
        out = (filters, _out(h, kernel, stride, pad), _out(w, kernel, stride, pad))
        return _Layer(spec, out, {"weights": weights, "bias": bias}, pad)
    if spec.kind == "affine":
        version = r.check("version", r.string, "affine_", "affine_2")
        gamma, beta = _params(r, c, c)
        r.check("gamma and beta aliases", lambda: (r.alias(), r.alias()), ((1, c, 1, 1),) * 2)
        r.check("mode (0 = per channel)", r.int32, 0)
        if version == "affine_2":
            r.check("disabled", r.boolean, False)
        return _Layer(spec, shape, {"gamma": gamma, "beta": beta})
    if spec.kind == "relu":
        if r.check("version", r.string, "relu_", "relu_2") == "relu_2":
            r.check("disabled", r.boolean, False)
        return _Layer(spec, shape)
    if spec.kind in ("max_pool", "avg_pool"):
        kernel, stride = spec.args
        pad = 0 if stride != 1 else kernel // 2
        r.check("version", r.string, f"{spec.kind}_2")
        found = (kernel, kernel, stride, stride, pad, pad)
        r.check("nr, nc, strides, paddings", lambda: r.ints(2, 4), found)
        if kernel == 0:  # avg_pool_everything
            return _Layer(spec, (c, 1, 1))
        return _Layer(spec, (c, _out(h, kernel, stride, pad), _out(w, kernel, stride, pad)))
    if spec.kind == "add_prev":
        r.check("version", r.string, "add_prev_")
        return _Layer(spec, shape)  # the output shape needs the tagged input: set by the caller
    if spec.kind == "fc":
        (outputs,) = spec.args
        inputs = c * h * w
        version = r.check("version", r.string, "fc_2", "fc_3")
        r.check("num_outputs, num_inputs", lambda: (r.uint64(), r.uint64()), (outputs, inputs))
        (weights,) = _params(r, inputs * outputs)  # anet_type uses fc_no_bias
        r.check("weights alias", r.alias, (inputs, outputs, 1, 1))
        r.check("bias alias", r.alias, (0, 0, 0, 0))
        r.check("bias mode (1 = no bias)", r.int32, 1)
        _ = [r.real() for _ in range(4)]
        if version == "fc_3":
            r.check("use_bias", r.boolean, True)
        return _Layer(spec, (outputs, 1, 1), {"weights": weights.reshape(inputs, outputs)})
    raise r.error(f"no reader for layer kind {spec.kind}")


def _parse(data: bytes, path: Path) -> tuple[list[_Layer], np.ndarray]:
    """Parse the whole file; return the layers in forward order and the RGB means."""
    r = DlibReader(data, path)
    r.where = "layer 0 loss_metric_"
    r.check("add_loss_layer version", r.int32, 1)
    r.check("version", r.string, "loss_metric_2")
    _ = (r.real(), r.real())  # margin and distance threshold: training only
    file_order = TOPOLOGY[::-1]
    versions: list[int] = []
    for index, spec in enumerate(file_order, start=1):
        r.where = f"layer {index} {spec.kind} {spec.name}"
        if spec.kind in _WRAPPERS:
            versions.append(r.check("add_tag_layer/add_skip_layer version", r.int32, 1))
        elif index == len(file_order):
            versions.append(r.check("input-adjacent add_layer version", r.int32, 2, 3))
        else:
            versions.append(r.check("add_layer version", r.int32, 1, 2))
    r.where = f"layer {len(file_order) + 1} input_rgb_image_sized"
    r.check("version", r.string, "input_rgb_image_sized")
    means = np.array([r.real(), r.real(), r.real()], np.float32)
    r.check("input size", lambda: (r.uint64(), r.uint64()), (CHIP_SIZE, CHIP_SIZE))
    shape = (3, CHIP_SIZE, CHIP_SIZE)
    layers: list[_Layer] = []
    tags: dict[int, tuple[int, int, int]] = {}
    for forward_index, spec in enumerate(TOPOLOGY):
        index = len(TOPOLOGY) - forward_index  # dlib's layer<index> (0 = loss)
        r.where = f"layer {index} {spec.kind} {spec.name}"
        if spec.kind == "tag":
            tags[spec.args[0]] = shape
        elif spec.kind == "skip":
            shape = tags[spec.args[0]]
        if spec.kind in _WRAPPERS:
            layers.append(_Layer(spec, shape))
            continue
        layer = _read_details(r, spec, shape)
        if spec.kind == "add_prev":
            c, h, w = map(max, shape, tags[spec.args[0]])  # dlib's add zero-extends
            layer.shape = (c, h, w)
        for _ in range(3):  # setup called, gradient stale, output/gradient disabled
            r.boolean()
        r.tensor()  # x_grad
        r.tensor()  # cached_output
        version = versions[index - 1]
        if forward_index == 0:
            r.tensor()  # grad_final
            if version == 3:
                r.uint64()  # sample_expansion_factor
        elif version == 2:
            r.tensor()  # params_grad
        layers.append(layer)
        shape = layer.shape
    r.where = "end of file"
    if r.pos != len(data):
        raise r.error(f"{len(data) - r.pos} trailing bytes after the network")
    return layers, means


class _Graph:
    """Collects ONNX nodes and initializers with readable names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _zero_extend(
    g: _Graph, x: str, shape: tuple[int, ...], target: tuple[int, ...], name: str
) -> str:
    """Zero-pad ``x`` at the end of the channel, row and column axes up to ``target``."""
    if shape == target:
        return x
    ends = [0] + [t - s for s, t in zip(shape, target, strict=True)]
    pads = g.const(f"{name}.pads", np.array([0, 0, 0, 0, *ends], np.int64))
    return g.node("Pad", [x, pads], name)


def _build(layers: list[_Layer], means: np.ndarray) -> onnx.ModelProto:
    """Emit the ONNX graph for the parsed layers (forward order), folding affines into convs."""
    g = _Graph()
    scale = np.full((1, 1, 1, 1), 1 / 256, np.float32)  # input_rgb_image: (pixel - mean) / 256
    x = g.node("Sub", ["chip", g.const("norm.mean", means.reshape(1, 3, 1, 1))], "norm.sub")
    x = g.node("Mul", [x, g.const("norm.scale", scale)], "norm")
    shape = (3, CHIP_SIZE, CHIP_SIZE)
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for i, layer in enumerate(layers):
        spec = layer.spec
        if spec.kind == "con":  # fold the following affine: y = gamma * (W * x + b) + beta
            affine = layers[i + 1].params
            gamma = affine["gamma"].astype(np.float64)
            weights = layer.params["weights"] * gamma[:, None, None, None]
            bias = layer.params["bias"] * gamma + affine["beta"]
            w = g.const(f"{spec.name}.weight", weights.astype(np.float32))
            b = g.const(f"{spec.name}.bias", bias.astype(np.float32))
            _, k, stride = spec.args
            geometry = {"kernel_shape": [k, k], "strides": [stride] * 2, "pads": [layer.pad] * 4}
            x = g.node("Conv", [x, w, b], spec.name, **geometry)
        elif spec.kind == "relu":
            x = g.node("Relu", [x], spec.name)
        elif spec.kind in ("max_pool", "avg_pool"):
            kernel, stride = spec.args
            if kernel == 0:
                x = g.node("GlobalAveragePool", [x], spec.name)
            else:
                op = "MaxPool" if spec.kind == "max_pool" else "AveragePool"
                x = g.node(op, [x], spec.name, kernel_shape=[kernel] * 2, strides=[stride] * 2)
        elif spec.kind == "tag":
            tags[spec.args[0]] = (x, shape)
        elif spec.kind == "skip":
            x = tags[spec.args[0]][0]
        elif spec.kind == "add_prev":
            other, other_shape = tags[spec.args[0]]
            a = _zero_extend(g, x, shape, layer.shape, f"{spec.name}.pad_main")
            b = _zero_extend(g, other, other_shape, layer.shape, f"{spec.name}.pad_skip")
            x = g.node("Add", [a, b], spec.name)
        elif spec.kind == "fc":
            x = g.node("Flatten", [x], f"{spec.name}.flatten", axis=1)
            x = g.node("Gemm", [x, g.const(f"{spec.name}.weight", layer.params["weights"])], "fc")
        shape = layer.shape
    g.nodes[-1].output[0] = "descriptor"  # the fc Gemm
    chip = helper.make_tensor_value_info(
        "chip", TensorProto.FLOAT, ["batch", 3, CHIP_SIZE, CHIP_SIZE]
    )
    out = helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["batch", shape[0]])
    graph = helper.make_graph(g.nodes, "dlib_face_resnet_v1", [chip], [out], g.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="compact-ai"
    )
    model.ir_version = IR_VERSION
    model.doc_string = "dlib face recognition ResNet v1 on RGB 0..255 dlib.get_face_chip chips"
    return model


def import_dlib_resnet(path: Path) -> onnx.ModelProto:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` and return the equivalent ONNX model.

    Raises ToolError naming the file, byte offset and layer when the file does not match.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ToolError(f"{path}: cannot read: {err}") from err
    layers, means = _parse(data, path)
    return _build(layers, means)

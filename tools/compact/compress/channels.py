"""Delete channels from an ONNX graph everywhere they occur (weights, biases, pads, shapes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

from tools.compact.compress.graph import Graph, attrs, copy_model, set_attr
from tools.compact.compress.groups import Dependencies


def _delete(array: np.ndarray, indices: Sequence[int], axis: int) -> np.ndarray:
    return np.delete(array, list(indices), axis=axis) if indices else array


def dense_axes(view: Graph, node: onnx.NodeProto) -> tuple[int, int]:
    """(input axis, output axis) of the weight of a dense node."""
    if node.op_type == "Conv":
        return 1, 0
    trans = node.op_type == "Gemm" and bool(attrs(node).get("transB", 0))
    return (1, 0) if trans else (0, 1)


def remove_channels(
    model: onnx.ModelProto, removal: Mapping[str, Sequence[int]], deps: Dependencies
) -> onnx.ModelProto:
    """Return a copy of ``model`` without the given channels (from ``Dependencies.removal``)."""
    view = Graph(copy_model(model))
    shapes = deps.shapes
    for node in list(view.graph.node):
        x, y = (node.input[0] if node.input else ""), node.output[0]
        ins, outs = removal.get(x, []), removal.get(y, [])
        if not ins and not outs:
            continue
        op = node.op_type
        if op == "Conv":
            weight = view.array(node.input[1])
            group = int(attrs(node).get("group", 1))
            if group == 1:
                weight = _delete(weight, ins, 1)
            else:
                set_attr(node, "group", group - len(ins))
            view.set_node_param(node, 1, _delete(weight, outs, 0))
            if len(node.input) > 2 and node.input[2]:
                view.set_node_param(node, 2, _delete(view.array(node.input[2]), outs, 0))
        elif op in ("Gemm", "MatMul"):
            in_axis, out_axis = dense_axes(view, node)
            weight = _delete(_delete(view.array(node.input[1]), ins, in_axis), outs, out_axis)
            view.set_node_param(node, 1, weight)
            if len(node.input) > 2 and node.input[2] and outs:
                bias = view.array(node.input[2])
                if bias.ndim and bias.shape[-1] == shapes[y][1]:
                    view.set_node_param(node, 2, _delete(bias, outs, bias.ndim - 1))
        elif op == "Pad":
            _shrink_pad(view, node, shapes[x][1], shapes[y][1], outs)
        elif op == "Reshape":
            target = view.array(node.input[1]).copy()
            if target[1] == shapes[y][1]:
                target[1] -= len(outs)
                view.set_node_param(node, 1, target)
        elif op in ("BatchNormalization", "InstanceNormalization"):
            for index in range(1, len(node.input)):
                view.set_node_param(node, index, _delete(view.array(node.input[index]), outs, 0))
        else:
            _shrink_broadcast_constants(view, node, len(shapes[y]), shapes[y][1], outs)
    del view.graph.value_info[:]
    onnx.checker.check_model(view.model)
    return view.model


def _shrink_pad(
    view: Graph, node: onnx.NodeProto, cin: int, cout: int, removed: Sequence[int]
) -> None:
    from_input = len(node.input) > 1 and bool(node.input[1])
    pads = list(view.array(node.input[1]) if from_input else attrs(node)["pads"])
    rank = len(pads) // 2
    begin, end = int(pads[1]), int(pads[rank + 1])
    gone = set(removed)
    pads[1] = sum(1 for c in range(begin) if c not in gone)
    pads[rank + 1] = sum(1 for c in range(begin + cin, cout) if c not in gone)
    assert end >= pads[rank + 1]
    if from_input:
        view.set_node_param(node, 1, np.array(pads, np.int64))
    else:
        set_attr(node, "pads", [int(p) for p in pads])


def _shrink_broadcast_constants(
    view: Graph, node: onnx.NodeProto, rank: int, channels: int, removed: Sequence[int]
) -> None:
    for index, name in enumerate(node.input):
        if not view.is_const(name) or channels == 1:
            continue
        value = view.array(name)
        axis = 1 - (rank - value.ndim)
        if axis >= 0 and value.shape[axis] == channels:
            view.set_node_param(node, index, _delete(value, removed, axis))


def dense_consumers(view: Graph) -> list[onnx.NodeProto]:
    """Dense nodes with a constant weight whose input channels map to weight columns."""
    dense = []
    for node in view.topological():
        if node.op_type not in ("Conv", "Gemm", "MatMul") or not view.is_const(node.input[1]):
            continue
        if node.op_type == "Conv" and int(attrs(node).get("group", 1)) != 1:
            continue
        if node.op_type == "Gemm" and attrs(node).get("transA", 0):
            continue
        if node.op_type == "MatMul" and view.array(node.input[1]).ndim != 2:
            continue
        dense.append(node)
    return dense

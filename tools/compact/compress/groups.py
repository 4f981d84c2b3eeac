"""Dependency groups: channels that must be removed together for the graph to stay valid.

Every channel (axis 1) of every activation tensor is an element of a union-find. Ops join
elements: an elementwise op joins its inputs' and output's channel c; Concat maps an input's
channel c to the output's channel offset + c; a Pad that zero-extends channels maps the real
channels onto the padded range (the padded-in channels are constant zeros coupled only with what
they are added to); a depthwise Conv joins input channel c with its output channels; Flatten of
[N, C, H, W] joins channel c with its H*W features. A dense Conv, Gemm or MatMul consumes its
input channels (removing one drops a weight column) and starts new output channels.

A class of joined elements is one prunable *unit*; units touching the same tensors the same
number of times form a *group* (for example all the channels of a residual stream that first
appear at one level). Graph inputs and outputs, and every op this module does not understand,
block their channels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from tools.compact.compress.graph import Graph, attrs

# Ops that map channel c of their first input to channel c of their output.
PASSTHROUGH = frozenset(
    {
        "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish",
        "Elu", "Selu", "Celu", "Softplus", "Softsign", "Gelu", "Mish", "Erf", "Identity",
        "Dropout", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round",
        "Sign", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
        "GlobalLpPool", "Resize", "Upsample", "BatchNormalization", "InstanceNormalization",
        "Reshape", "Squeeze", "Unsqueeze",
    }
)  # fmt: skip
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow"})
DENSE = frozenset({"Conv", "Gemm", "MatMul"})


@dataclass
class Group:
    """Units (one channel in each of ``tensors``) that are pruned all together or not at all."""

    index: int
    tensors: tuple[tuple[str, int], ...]  # (tensor, channels of it per unit)
    units: list[dict[str, tuple[int, ...]]]
    sources: tuple[str, ...]  # tensors whose producer starts this group's channels
    prunable: bool

    @property
    def size(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    def name(self) -> str:
        """A readable name: the first source node, or the first tensor."""
        return self.sources[0] if self.sources else self.tensors[0][0]


@dataclass
class Dependencies:
    """The groups of a model and the shapes they were found with."""

    groups: list[Group]
    shapes: dict[str, tuple[int, ...]]

    def removal(self, choice: Mapping[int, Sequence[int]]) -> dict[str, list[int]]:
        """Map {group index: unit indices} to {tensor: sorted channel indices to remove}."""
        removed: dict[str, set[int]] = defaultdict(set)
        for index, units in choice.items():
            group = self.groups[index]
            if units and not group.prunable:
                raise ValueError(f"group {group.name} cannot be pruned")
            for unit in units:
                for tensor, channels in group.units[unit].items():
                    removed[tensor].update(channels)
        return {tensor: sorted(channels) for tensor, channels in removed.items()}

    def channels_after(self, kept: Mapping[int, int]) -> dict[str, int]:
        """Channel count of every tensor when group g keeps ``kept[g]`` of its units."""
        counts = {name: shape[1] for name, shape in self.shapes.items() if len(shape) >= 2}
        for group in self.groups:
            removed = group.size - kept.get(group.index, group.size)
            for tensor, per_unit in group.tensors:
                counts[tensor] -= per_unit * removed
        return counts


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class _Builder:
    """Walks the nodes once, joining, consuming and blocking channel elements."""

    def __init__(self, model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.view = Graph(model)
        self.shapes = dict(shapes)
        self.offset: dict[str, int] = {}
        total = 0
        names = [*self.view.input_names, *(o for n in self.view.graph.node for o in n.output)]
        for name in names:
            if name and len(self.shapes.get(name, ())) >= 2:
                self.offset[name] = total
                total += self.shapes[name][1]
        self.uf = _UnionFind(total)
        self.blocked = np.zeros(total, bool)
        self.source: dict[int, str] = {}

    def channels(self, name: str) -> int:
        return self.shapes[name][1] if name in self.offset else 0

    def element(self, name: str, channel: int) -> int:
        return self.offset[name] + channel

    def join(self, a: str, b: str, a_map: Sequence[int], b_map: Sequence[int]) -> None:
        for i, j in zip(a_map, b_map, strict=True):
            self.uf.union(self.element(a, i), self.element(b, j))

    def join_all(self, a: str, b: str) -> None:
        self.join(a, b, range(self.channels(a)), range(self.channels(b)))

    def block(self, *names: str) -> None:
        for name in names:
            if name in self.offset:
                start = self.offset[name]
                self.blocked[start : start + self.channels(name)] = True

    def start(self, node: onnx.NodeProto) -> None:
        out = node.output[0]
        for channel in range(self.channels(out)):
            self.source[self.element(out, channel)] = out

    def activations(self, node: onnx.NodeProto) -> list[str]:
        return [name for name in node.input if name and not self.view.is_const(name)]

    def visit(self, node: onnx.NodeProto) -> None:
        ins, outs = self.activations(node), [o for o in node.output if o]
        if any(name not in self.offset for name in ins + outs[:1]):
            self.block(*ins, *outs)
        elif node.op_type in DENSE:
            self.dense(node)
        elif node.op_type in ELEMENTWISE:
            self.elementwise(node, ins)
        elif node.op_type == "Concat":
            self.concat(node, ins)
        elif node.op_type == "Pad":
            self.pad(node)
        elif node.op_type == "Flatten":
            self.flatten(node)
        elif node.op_type in PASSTHROUGH and len(ins) == 1:
            self.passthrough(node)
        else:
            self.block(*ins, *outs)
        self.block(*outs[1:])

    def dense(self, node: onnx.NodeProto) -> None:
        x, y = node.input[0], node.output[0]
        if not self.view.is_const(node.input[1]) or len(self.activations(node)) != 1:
            self.block(x, y)
            return
        options = attrs(node)
        if node.op_type == "Conv":
            group = int(options.get("group", 1))
            cin, cout = self.channels(x), self.channels(y)
            if group == 1:
                self.start(node)
            elif group == cin and cout % cin == 0:
                multiplier = cout // cin
                for c in range(cin):
                    for j in range(multiplier):
                        self.uf.union(self.element(x, c), self.element(y, c * multiplier + j))
            else:
                self.block(x, y)
            return
        two_d = len(self.shapes[x]) == 2 and self.view.array(node.input[1]).ndim == 2
        if not two_d or options.get("transA", 0):
            self.block(x, y)
            return
        self.start(node)

    def elementwise(self, node: onnx.NodeProto, ins: list[str]) -> None:
        y = node.output[0]
        rank = len(self.shapes[y])
        for name in ins:
            shape = self.shapes[name]
            if len(shape) == rank and shape[1] == self.channels(y):
                self.join_all(name, y)
            elif len(shape) != rank or shape[1] != 1:
                self.block(*ins, y)
                return
        for name in node.input:
            if self.view.is_const(name):
                const = self.view.array(name).shape
                axis = 1 - (rank - len(const))
                if axis >= 0 and const[axis] not in (1, self.channels(y)):
                    self.block(*ins, y)
                    return

    def concat(self, node: onnx.NodeProto, ins: list[str]) -> None:
        y = node.output[0]
        axis = int(attrs(node)["axis"])
        if len(ins) != len(node.input) or axis not in (1, 1 - len(self.shapes[y])):
            self.block(*ins, y)
            return
        offset = 0
        for name in ins:
            size = self.channels(name)
            self.join(name, y, range(size), range(offset, offset + size))
            offset += size

    def pad(self, node: onnx.NodeProto) -> None:
        x, y = node.input[0], node.output[0]
        options = attrs(node)
        pads = options.get("pads")
        if len(node.input) > 1 and node.input[1]:
            pads = (
                self.view.array(node.input[1]).tolist()
                if self.view.is_const(node.input[1])
                else None
            )
        value_name = node.input[2] if len(node.input) > 2 else ""
        value = self.view.array(value_name) if self.view.is_const(value_name) else None
        zero = not value_name or (value is not None and not value.any())
        axes_given = len(node.input) > 3 and bool(node.input[3])
        if pads is None or axes_given:
            self.block(x, y)
            return
        begin, end = int(pads[1]), int(pads[len(pads) // 2 + 1])
        if begin == end == 0:
            self.join_all(x, y)
            return
        if begin < 0 or end < 0 or options.get("mode", "constant") != "constant" or not zero:
            self.block(x, y)
            return
        cin = self.channels(x)
        self.join(x, y, range(cin), range(begin, begin + cin))
        padded = [*range(begin), *range(begin + cin, begin + cin + end)]
        for channel in padded:
            self.source[self.element(y, channel)] = y

    def flatten(self, node: onnx.NodeProto) -> None:
        x, y = node.input[0], node.output[0]
        shape = self.shapes[x]
        if int(attrs(node).get("axis", 1)) != 1 or len(shape) < 2:
            self.block(x, y)
            return
        inner = int(np.prod(shape[2:], dtype=np.int64))
        for c in range(shape[1]):
            for k in range(inner):
                self.uf.union(self.element(x, c), self.element(y, c * inner + k))

    def passthrough(self, node: onnx.NodeProto) -> None:
        x, y = node.input[0], node.output[0]
        same = self.shapes[x][:2] == self.shapes[y][:2]
        resized = node.op_type == "Resize" and len(node.input) > 3 and bool(node.input[3])
        if resized or (node.op_type in ("Reshape", "Squeeze", "Unsqueeze") and not same):
            self.block(x, y)
        elif self.channels(x) == self.channels(y):
            self.join_all(x, y)
        else:
            self.block(x, y)


def find_groups(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> Dependencies:
    """Return the dependency groups of ``model`` given the concrete shape of every tensor."""
    builder = _Builder(model, shapes)
    for node in builder.view.topological():
        builder.visit(node)
    builder.block(*builder.view.input_names, *builder.view.output_names)
    uf = builder.uf
    members: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    blocked_roots = {uf.find(int(e)) for e in np.flatnonzero(builder.blocked)}
    sources: dict[int, set[str]] = defaultdict(set)
    for element, name in builder.source.items():
        sources[uf.find(element)].add(name)
    for name, start in builder.offset.items():
        for channel in range(builder.channels(name)):
            members[uf.find(start + channel)][name].append(channel)
    by_signature: dict[tuple[tuple[str, int], ...], list[int]] = defaultdict(list)
    for root, tensors in members.items():
        if root not in blocked_roots:
            by_signature[tuple(sorted((t, len(c)) for t, c in tensors.items()))].append(root)
    order = {name: i for i, name in enumerate(builder.offset)}
    groups: list[Group] = []
    signatures = sorted(by_signature, key=lambda s: min(order[t] for t, _ in s))
    for signature in signatures:
        roots = sorted(by_signature[signature])
        units = [{t: tuple(c) for t, c in members[root].items()} for root in roots]
        names = sorted(set().union(*(sources[root] for root in roots)), key=order.__getitem__)
        prunable = bool(names) and len(units) > 1 and all(sources[root] for root in roots)
        groups.append(Group(len(groups), signature, units, tuple(names), prunable))
    return Dependencies(groups, dict(shapes))

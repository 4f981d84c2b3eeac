"""A small typed view over an ``onnx.ModelProto``: producers, consumers, numpy initializers.

The view edits the wrapped model in place (callers copy first when they need the original) and
runs models on onnxruntime with any intermediate tensor exposed as an output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

Feed = dict[str, np.ndarray]


def first_sample(feed: Feed) -> Feed:
    """Return the first sample of a batched feed (batch 1)."""
    return {name: value[:1] for name, value in feed.items()}


def attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """Return the node's attributes as Python values (bytes decoded to str)."""
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    """Set (or replace) one attribute of ``node``."""
    for index, attribute in enumerate(node.attribute):
        if attribute.name == name:
            del node.attribute[index]
            break
    node.attribute.append(helper.make_attribute(name, value))


class Graph:
    """Producers, consumers and initializers of a model's main graph, kept in sync by edits."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self._arrays: dict[str, np.ndarray] = {}
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the producer/consumer maps after nodes were added, removed or rewired."""
        self.inits = {init.name: init for init in self.graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)

    @property
    def input_names(self) -> list[str]:
        """Graph inputs that are not initializers."""
        return [v.name for v in self.graph.input if v.name not in self.inits]

    @property
    def output_names(self) -> list[str]:
        """Graph output names."""
        return [v.name for v in self.graph.output]

    def is_const(self, name: str) -> bool:
        """Whether ``name`` is an initializer."""
        return name in self.inits

    def array(self, name: str) -> np.ndarray:
        """Return an initializer as a numpy array (cached; do not modify in place)."""
        if name not in self._arrays:
            self._arrays[name] = numpy_helper.to_array(self.inits[name])
        return self._arrays[name]

    def set_array(self, name: str, array: np.ndarray) -> None:
        """Replace (or add) the initializer ``name`` with ``array``."""
        tensor = numpy_helper.from_array(np.ascontiguousarray(array), name)
        if name in self.inits:
            self.inits[name].CopyFrom(tensor)
        else:
            self.graph.initializer.append(tensor)
            self.inits[name] = self.graph.initializer[-1]
        self._arrays[name] = np.asarray(array)

    def set_node_param(self, node: onnx.NodeProto, index: int, array: np.ndarray) -> None:
        """Set input ``index`` of ``node`` to ``array``, copying the initializer if shared."""
        name = node.input[index]
        if len(self.consumers.get(name, [])) > 1:
            base, suffix = f"{name}.{node.name or node.output[0]}", 0
            new = base
            while new in self.inits or new in self.producer:
                suffix += 1
                new = f"{base}.{suffix}"
            self.consumers[name].remove(node)
            self.consumers[new] = [node]
            node.input[index] = new
            name = new
        self.set_array(name, array)

    def topological(self) -> list[onnx.NodeProto]:
        """Return the nodes in a topological order (stable with respect to file order)."""
        ready = set(self.inits) | {v.name for v in self.graph.input} | {""}
        pending = list(self.graph.node)
        ordered: list[onnx.NodeProto] = []
        while pending:
            rest = []
            for node in pending:
                if all(name in ready for name in node.input):
                    ordered.append(node)
                    ready.update(node.output)
                else:
                    rest.append(node)
            if len(rest) == len(pending):
                raise ValueError(f"graph has a cycle or missing inputs at {rest[0].name}")
            pending = rest
        return ordered

    def remove_unused(self) -> None:
        """Drop nodes whose outputs are never used, then unused initializers."""
        needed = set(self.output_names)
        kept: list[onnx.NodeProto] = []
        for node in reversed(self.topological()):
            if any(name in needed for name in node.output):
                kept.append(node)
                needed.update(name for name in node.input if name)
        del self.graph.node[:]
        self.graph.node.extend(reversed(kept))
        unused = [init for init in self.graph.initializer if init.name not in needed]
        for init in unused:
            self.graph.initializer.remove(init)
            self._arrays.pop(init.name, None)
        graph_inputs = [
            v for v in self.graph.input if v.name in self.inits and v.name not in needed
        ]
        for value in graph_inputs:
            self.graph.input.remove(value)
        used_info = [v for v in self.graph.value_info if v.name in needed]
        del self.graph.value_info[:]
        self.graph.value_info.extend(used_info)
        self.reindex()

    def rename_tensor(self, old: str, new: str) -> None:
        """Make every consumer read ``new`` instead of ``old``."""
        for node in self.consumers.get(old, []):
            for index, name in enumerate(node.input):
                if name == old:
                    node.input[index] = new
        for value in self.graph.output:
            if value.name == old:
                value.name = new
        self.reindex()


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a deep copy of ``model``."""
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def session(model: onnx.ModelProto | bytes, threads: int = 1) -> Any:
    """Return an onnxruntime CPU session with ``threads`` intra-op threads (1 inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Return the element type of every tensor that shape inference can type."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in graph.value_info}
    types |= {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)}
    types |= {init.name: init.data_type for init in graph.initializer}
    return types


def with_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """Return a copy of ``model`` whose outputs are exactly ``names`` (any tensors)."""
    clone = copy_model(model)
    types = elem_types(model)
    del clone.graph.output[:]
    for name in names:
        elem = types.get(name) or onnx.TensorProto.FLOAT
        clone.graph.output.append(helper.make_tensor_value_info(name, elem, None))
    return clone


def run_tensors(
    model: onnx.ModelProto,
    feeds: Iterable[Mapping[str, np.ndarray]],
    names: Sequence[str],
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Run every feed and return ``names`` concatenated along the batch axis."""
    runner = session(with_outputs(model, names), threads)
    collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for feed in feeds:
        for name, value in zip(names, runner.run(list(names), dict(feed)), strict=True):
            collected[name].append(value)
    return {name: np.concatenate(values) for name, values in collected.items()}


def node_outputs(model: onnx.ModelProto) -> list[str]:
    """Return every node output in topological order."""
    return [name for node in Graph(model).topological() for name in node.output if name]


def tensor_shapes(
    model: onnx.ModelProto, feed: Mapping[str, np.ndarray]
) -> dict[str, tuple[int, ...]]:
    """Return the concrete shape of every activation for one feed (run on onnxruntime)."""
    names = node_outputs(model)
    values = session(with_outputs(model, names)).run(names, dict(feed))
    shapes = {name: tuple(int(d) for d in v.shape) for name, v in zip(names, values, strict=True)}
    shapes |= {name: tuple(int(d) for d in value.shape) for name, value in feed.items()}
    view = Graph(model)
    shapes |= {name: tuple(int(d) for d in init.dims) for name, init in view.inits.items()}
    return shapes

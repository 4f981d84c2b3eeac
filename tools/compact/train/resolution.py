"""A student that sees fewer pixels: the teacher's convolutions on smaller chips, a new last layer.

Convolutions do not care how many pixels they see, so a net trained on 112 px chips runs on
80 px ones in about (80/112)^2 of its time (SFace fp32, onnxruntime, 1 thread: 0.52x; 64 px:
0.35x), where pruning SFace's channels to 0.3x its FLOPs only reached 0.46x. Only the dense
layer over the last feature map (SFace: Flatten, then Gemm over 7x7 cells) must change size; it
is solved here by ridge least squares so that the student's embeddings of the training chips
point where the teacher's do, then distillation trains the whole net. SFace at 80 px told
96.5 % of held-out pairs apart with only that layer solved, 98.3 % after two epochs.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tools.compact.errors import ToolError

FIT_SAMPLES = 8000  # chips the last layer is solved on (the dual problem is this square)
HELD_OUT = 0.1  # of them, to pick the ridge strength
STRENGTHS = (0.1, 1.0, 10.0, 100.0)  # times the mean eigenvalue of the chips' Gram matrix


def _tail(model: onnx.ModelProto) -> tuple[int, onnx.NodeProto, list[onnx.NodeProto]]:
    """Return the Flatten's index, the Gemm it feeds and the BatchNormalizations after it."""
    nodes = list(model.graph.node)
    flat = next((i for i, n in enumerate(nodes) if n.op_type == "Flatten"), None)
    if flat is None or flat + 1 >= len(nodes) or nodes[flat + 1].op_type != "Gemm":
        raise ToolError("a smaller input needs a net that ends in Flatten and Gemm (as SFace)")
    after = nodes[flat + 2 :]
    if any(n.op_type != "BatchNormalization" for n in after):
        names = ", ".join(sorted({n.op_type for n in after}))
        raise ToolError(f"a smaller input cannot solve a last layer followed by {names}")
    return flat, nodes[flat + 1], after


def _ridge(features: np.ndarray, targets: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``targets ~ features @ w + b`` in the dual (fewer chips than features).

    The strength is the one whose held-out embeddings point closest to the teacher's.
    """
    count = max(1, round(len(features) * HELD_OUT))
    held = np.zeros(len(features), bool)
    held[np.random.default_rng(seed).permutation(len(features))[:count]] = True
    x_mean, y_mean = features[~held].mean(axis=0), targets[~held].mean(axis=0)
    x = (features[~held] - x_mean).astype(np.float64)
    y = (targets[~held] - y_mean).astype(np.float64)

    def solve(x: np.ndarray, y: np.ndarray, strengths: tuple[float, ...]) -> list[np.ndarray]:
        values, vectors = np.linalg.eigh(x @ x.T)
        projected = vectors.T @ y
        return [
            x.T @ (vectors @ (projected / (values + s * values.mean())[:, None])) for s in strengths
        ]

    cosines = []
    for weights in solve(x, y, STRENGTHS):
        guess = (features[held] - x_mean) @ weights + y_mean
        guess /= np.linalg.norm(guess, axis=1, keepdims=True)
        cosines.append(float(np.mean(np.sum(guess * targets[held], axis=1))))
    # the chosen strength, solved again on every chip
    x_mean, y_mean = features.mean(axis=0), targets.mean(axis=0)
    x = (features - x_mean).astype(np.float64)
    y = (targets - y_mean).astype(np.float64)
    (weights,) = solve(x, y, (STRENGTHS[int(np.argmax(cosines))],))
    solved = weights.astype(np.float32)
    return solved, (y_mean - x_mean @ solved).astype(np.float32)


def at_input_size(
    model: onnx.ModelProto, size: int, chips: np.ndarray, targets: np.ndarray, seed: int = 0
) -> onnx.ModelProto:
    """Return ``model`` taking ``size`` px chips, its last layer solved on ``chips``' targets.

    ``chips`` (N, 3, size, size) uint8 and ``targets`` (N, D), the teacher's normalized
    embeddings. The BatchNormalization after the Gemm goes: the solved Gemm gives the embedding.
    """
    from tools.compact.compress.calibration import batches
    from tools.compact.compress.graph import run_tensors

    flat, gemm, after = _tail(model)
    student = onnx.ModelProto()
    student.CopyFrom(model)
    dims = student.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value, dims[3].dim_value = size, size
    del student.graph.value_info[:]
    # The trunk: every node up to the Flatten, without the weights only the tail used.
    nodes = list(student.graph.node)[: flat + 1]
    gone = {name for node in (gemm, *after) for name in node.input[1:]}
    gone -= {name for node in nodes for name in node.input}
    kept = [i for i in student.graph.initializer if i.name not in gone]
    del student.graph.node[:], student.graph.initializer[:]
    student.graph.node.extend(nodes)
    student.graph.initializer.extend(kept)
    features_name = nodes[-1].output[0]
    pick = np.random.default_rng(seed).permutation(len(chips))[:FIT_SAMPLES]
    feeds = batches("chip", chips[pick].astype(np.float32), 16)
    features = run_tensors(student, feeds, [features_name], os.cpu_count() or 1)[features_name]
    weights, bias = _ridge(features, targets[pick], seed)
    # The solved layer replaces the Gemm and the normalizations after it.
    student.graph.initializer.extend(
        [
            numpy_helper.from_array(weights.T.copy(), "solved_weight"),
            numpy_helper.from_array(bias, "solved_bias"),
        ]
    )
    output = student.graph.output[0].name
    inputs = [features_name, "solved_weight", "solved_bias"]
    student.graph.node.append(helper.make_node("Gemm", inputs, [output], transB=1))
    onnx.checker.check_model(student)
    return student

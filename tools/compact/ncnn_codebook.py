"""8-bit codebook weights for ncnn files: about half the bytes of fp16, fp32 compute.

ncnn's model loader reads a weight blob that starts with a flag other than its raw (0),
fp16 (``0x01306B47``) and int8 (``0x000D4B38``) tags as a 256-entry float table followed by
one uint8 index per weight, and expands it to float32 on load. So a codebook ``.bin`` runs
the same layers at the same speed as the fp16 or fp32 one; only the weight values move to the
nearest of 256 levels per blob. The levels are a 1-D k-means (Lloyd) of the blob's weights,
started evenly spaced from the smallest to the largest weight (so the rare large weights keep
levels of their own): deterministic, and denser where the weights are.

Only weight blobs that ncnn loads with "auto" type (Convolution, ConvolutionDepthWise and
InnerProduct weights) can be stored this way; biases and other raw blobs are copied.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np

from tools.compact.errors import ToolError

FP16_TAG: Final = 0x01306B47
INT8_TAG: Final = 0x000D4B38
SCALED_TAG: Final = 0x0002C056
CODEBOOK_FLAG: Final = struct.pack("<I", 1)  # any flag but 0 and the three tags
LEVELS: Final = 256
LLOYD_STEPS: Final = 12
# weight_data_size key and bias_term key of the layers whose weights are "auto" blobs
WEIGHTED: Final = {
    "Convolution": ("6", "5"),
    "ConvolutionDepthWise": ("6", "5"),
    "InnerProduct": ("2", "1"),
}
WEIGHTLESS: Final = frozenset(
    {
        "Input",
        "Split",
        "BinaryOp",
        "ReLU",
        "Pooling",
        "Padding",
        "Flatten",
        "Reshape",
        "Concat",
        "Eltwise",
        "Sigmoid",
        "Softmax",
        "Permute",
        "Crop",
        "Slice",
        "UnaryOp",
        "Clip",
        "Interp",
        "Noop",
    }
)


def _align4(size: int) -> int:
    return (size + 3) // 4 * 4


def _layers(param: bytes) -> list[tuple[str, dict[str, str]]]:
    """(type, key=value params) of every layer line of an ncnn ``.param``."""
    layers = []
    for line in param.decode("ascii").splitlines()[2:]:
        fields = line.split()
        if not fields:
            continue
        inputs, outputs = int(fields[2]), int(fields[3])
        pairs = fields[4 + inputs + outputs :]
        layers.append((fields[0], dict(pair.split("=", 1) for pair in pairs)))
    return layers


def codebook(values: np.ndarray, levels: int = LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Return (``levels`` float32 centres, uint8 index per value) of a 1-D k-means."""
    flat = values.astype(np.float64).ravel()
    ordered = np.sort(flat)
    centres = np.unique(np.linspace(ordered[0], ordered[-1], levels))
    for _ in range(LLOYD_STEPS):
        edges = (centres[1:] + centres[:-1]) / 2
        bins = np.searchsorted(edges, ordered)
        sums = np.bincount(bins, ordered, minlength=len(centres))
        counts = np.bincount(bins, minlength=len(centres))
        used = counts > 0
        centres = np.unique(np.where(used, sums / np.maximum(counts, 1), centres))
    table = np.zeros(levels, np.float32)
    table[: len(centres)] = centres
    edges = (centres[1:] + centres[:-1]) / 2
    return table, np.searchsorted(edges, flat).astype(np.uint8)


class _Reader:
    """Walks a ``.bin`` blob by blob."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise ToolError("the ncnn .bin is shorter than its .param describes")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def auto_blob(self, count: int) -> np.ndarray:
        """Read an "auto" blob (tag + data) as float32."""
        (tag,) = struct.unpack("<I", self.take(4))
        if tag == FP16_TAG:
            raw = self.take(_align4(count * 2))
            return np.frombuffer(raw[: count * 2], np.float16).astype(np.float32)
        if tag in (0, SCALED_TAG):
            return np.frombuffer(self.take(count * 4), np.float32).copy()
        raise ToolError(f"ncnn weight blob with tag {tag:#x} is already quantized")


def codebook_weights(param: bytes, weights: bytes) -> bytes:
    """Return ``weights`` (an ncnn ``.bin`` for ``param``) with 8-bit codebook weight blobs."""
    reader = _Reader(weights)
    out = bytearray()
    for kind, params in _layers(param):
        if kind in WEIGHTED:
            size_key, bias_key = WEIGHTED[kind]
            count = int(params.get(size_key, "0"))
            table, index = codebook(reader.auto_blob(count))
            out += CODEBOOK_FLAG + table.tobytes() + index.tobytes()
            out += bytes(_align4(count) - count)
            if params.get(bias_key, "0") != "0":
                out += reader.take(int(params.get("0", "0")) * 4)
            if params.get("8", "0") != "0":
                raise ToolError(f"{kind}: int8 layers cannot take codebook weights")
        elif kind == "MemoryData":
            dims = [int(params.get(key, "0")) for key in ("0", "1", "11", "2")]
            count = int(np.prod([d for d in dims if d > 0]))
            out += reader.take(count * 4)
        elif kind not in WEIGHTLESS:
            raise ToolError(f"ncnn layer {kind} is not known to codebook_weights")
    if reader.at != len(weights):
        raise ToolError("the ncnn .bin has bytes its .param does not describe")
    return bytes(out)

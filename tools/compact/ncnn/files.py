"""Read and rewrite ncnn ``.param`` / ``.bin`` pairs layer by layer.

ncnn's model loader reads an "auto" weight blob (Convolution, ConvolutionDepthWise and
InnerProduct weights) as a 4-byte flag and the data: 0 or ``0x0002C056`` raw fp32,
``0x01306B47`` fp16, ``0x000D4B38`` int8, any other flag a 256-entry float codebook followed
by one uint8 index per weight. Biases, MemoryData, PReLU slopes and BatchNorm's four vectors
are raw fp32 without a flag (kept as they are). Every blob is padded to 4 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from tools.compact.errors import ToolError

FP16_TAG: Final = 0x01306B47
INT8_TAG: Final = 0x000D4B38
SCALED_TAG: Final = 0x0002C056
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


def align4(size: int) -> int:
    """Return ``size`` rounded up to a multiple of 4."""
    return (size + 3) // 4 * 4


@dataclass
class Layer:
    """One layer line of a ``.param`` and, after :func:`read_weights`, its blobs."""

    kind: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str]
    weight: np.ndarray | None = None  # float32, for WEIGHTED layers
    bias: np.ndarray | None = None
    raw: bytes = field(default=b"", repr=False)  # raw fp32 blobs (MemoryData, PReLU, BatchNorm)

    def line(self) -> str:
        """Return the layer as a ``.param`` line."""
        counts = [str(len(self.bottoms)), str(len(self.tops))]
        pairs = [f"{key}={value}" for key, value in self.params.items()]
        return " ".join([self.kind.ljust(24), self.name.ljust(24), *counts,
                         *self.bottoms, *self.tops, *pairs])  # fmt: skip


def parse_param(param: bytes) -> tuple[list[str], list[Layer]]:
    """Return the two header lines and the layers of an ncnn ``.param``."""
    lines = param.decode("ascii").splitlines()
    layers = []
    for line in lines[2:]:
        fields = line.split()
        if not fields:
            continue
        inputs, outputs = int(fields[2]), int(fields[3])
        bottoms, tops = fields[4 : 4 + inputs], fields[4 + inputs : 4 + inputs + outputs]
        params = dict(pair.split("=", 1) for pair in fields[4 + inputs + outputs :])
        layers.append(Layer(fields[0], fields[1], bottoms, tops, params))
    return lines[:2], layers


def format_param(header: list[str], layers: list[Layer]) -> bytes:
    """Return ``.param`` bytes for ``layers``."""
    return ("\n".join([*header, *(layer.line() for layer in layers)]) + "\n").encode("ascii")


class BlobReader:
    """Walks a ``.bin`` blob by blob."""

    def __init__(self, data: bytes) -> None:
        """Read ``data`` from its start."""
        self.data = data
        self.at = 0

    def take(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        if self.at + size > len(self.data):
            raise ToolError("the ncnn .bin is shorter than its .param describes")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def auto_blob(self, count: int) -> np.ndarray:
        """Read an "auto" blob (flag + data) of ``count`` float32 or fp16 values."""
        (tag,) = struct.unpack("<I", self.take(4))
        if tag == FP16_TAG:
            raw = self.take(align4(count * 2))
            return np.frombuffer(raw[: count * 2], np.float16).astype(np.float32)
        if tag in (0, SCALED_TAG):
            return np.frombuffer(self.take(count * 4), np.float32).copy()
        raise ToolError(f"ncnn weight blob with tag {tag:#x} is already quantized")

    def floats(self, count: int) -> np.ndarray:
        """Read ``count`` raw float32 values."""
        return np.frombuffer(self.take(count * 4), np.float32).copy()


def read_weights(layers: list[Layer], weights: bytes) -> None:
    """Attach every layer's blobs from ``weights`` (fp32 or fp16 files only)."""
    reader = BlobReader(weights)
    for layer in layers:
        if layer.kind in WEIGHTED:
            size_key, bias_key = WEIGHTED[layer.kind]
            if layer.params.get("8", "0") != "0":
                raise ToolError(f"{layer.kind} {layer.name} is already an int8 layer")
            layer.weight = reader.auto_blob(int(layer.params.get(size_key, "0")))
            if layer.params.get(bias_key, "0") != "0":
                layer.bias = reader.floats(int(layer.params.get("0", "0")))
        elif layer.kind == "MemoryData":
            dims = [int(layer.params.get(key, "0")) for key in ("0", "1", "11", "2")]
            layer.raw = reader.take(int(np.prod([d for d in dims if d > 0])) * 4)
        elif layer.kind == "PReLU":  # one slope per channel (0=count)
            layer.raw = reader.take(int(layer.params.get("0", "0")) * 4)
        elif layer.kind == "BatchNorm":  # slope, mean, variance, bias per channel (0=channels)
            layer.raw = reader.take(4 * int(layer.params.get("0", "0")) * 4)
        elif layer.kind not in WEIGHTLESS:
            raise ToolError(f"ncnn layer {layer.kind} is not known to the weight writer")
    if reader.at != len(weights):
        raise ToolError("the ncnn .bin has bytes its .param does not describe")


def fp16_blob(values: np.ndarray) -> bytes:
    """Return an "auto" blob holding ``values`` as fp16 (ncnn widens them when it loads)."""
    data = values.astype(np.float16).tobytes()
    return struct.pack("<I", FP16_TAG) + data + bytes(align4(len(data)) - len(data))

"""8-bit codebook weights for ncnn files: about half the bytes of fp16, fp32 compute.

ncnn's model loader reads a weight blob that starts with a flag other than its raw, fp16
and int8 tags as a 256-entry float table followed by one uint8 index per weight, and
expands it to float32 on load (:mod:`.ncnn_files`). So a codebook ``.bin`` runs
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

from tools.compact.ncnn.files import align4, parse_param, read_weights

CODEBOOK_FLAG: Final = struct.pack("<I", 1)  # any flag but 0 and the three tags
LEVELS: Final = 256
LLOYD_STEPS: Final = 12


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


def codebook_weights(param: bytes, weights: bytes) -> bytes:
    """Return ``weights`` (an ncnn ``.bin`` for ``param``) with 8-bit codebook weight blobs."""
    _, layers = parse_param(param)
    read_weights(layers, weights)
    out = bytearray()
    for layer in layers:
        if layer.weight is not None:
            table, index = codebook(layer.weight)
            out += CODEBOOK_FLAG + table.tobytes() + index.tobytes()
            out += bytes(align4(index.size) - index.size)
        if layer.bias is not None:
            out += layer.bias.tobytes()
        out += layer.raw
    return bytes(out)

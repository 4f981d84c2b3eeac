"""int8 convolutions for ncnn: its own integer kernels, scaled from calibration activations.

An int8 Convolution (what ncnn's ``ncnn2int8`` writes) has param ``8=2``; its ``.bin`` holds
the weights as an int8 blob, the bias (raw fp32), one weight scale per output channel
(127 / max |w|) and one input scale (127 / max |x| over the calibration data), each raw fp32.
At run time ncnn quantizes the input, runs integer kernels and dequantizes the output, so
the layers around stay fp32. The first convolution (colour channels in) stays fp32: in int8
it is slower here and it sees the raw pixels.

Winograd kernels pre-transform the weights into several times their size; on the widest
convolutions that memory traffic costs more than winograd saves. :func:`winograd_off`
turns it off per layer (param key 31, ncnn's feature mask) where in x out channels reach a
limit, measured on the face embedder: 32768 in fp32, 16384 in int8.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np

from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnOptions, load_net
from tools.compact.errors import ToolError
from tools.compact.ncnn.codebook import CODEBOOK_FLAG, codebook
from tools.compact.ncnn.files import (
    INT8_TAG,
    Layer,
    align4,
    format_param,
    fp16_blob,
    parse_param,
    read_weights,
)

MIN_INPUT_CHANNELS: Final = 16
INT8_SCALE_TERM: Final = "2"
FEATURE_MASK_KEY: Final = "31"
NO_WINOGRAD: Final = 64  # ncnn's featmask bit that disables winograd for one layer
WINOGRAD_LIMIT_FP32: Final = 32768
WINOGRAD_LIMIT_INT8: Final = 16384
CODEBOOK_MIN: Final = 1 << 20  # weights in a float layer worth an 8-bit codebook


def channels(layer: Layer) -> tuple[int, int]:
    """Return (input, output) channels of a Convolution layer."""
    outputs = int(layer.params.get("0", "0"))
    kernel_w = int(layer.params.get("1", "0"))
    kernel_h = int(layer.params.get("11", str(kernel_w)))
    size = int(layer.params.get("6", "0"))
    if outputs * kernel_w * kernel_h == 0:
        raise ToolError(f"Convolution {layer.name} has no output channels or kernel")
    return size // (outputs * kernel_w * kernel_h), outputs


def int8_candidates(layers: list[Layer]) -> list[Layer]:
    """Return the Convolution layers worth running in int8."""
    return [
        layer
        for layer in layers
        if layer.kind == "Convolution" and channels(layer)[0] >= MIN_INPUT_CHANNELS
    ]


def input_scales(
    param: bytes, weights: bytes, input_blob: str, samples: np.ndarray
) -> dict[str, float]:
    """Return 127 / max |x| of every int8 candidate's input blob over ``samples`` (N, ...)."""
    import ncnn

    _, layers = parse_param(param)
    blobs = list(dict.fromkeys(layer.bottoms[0] for layer in int8_candidates(layers)))
    net = load_net(param, weights, name="calibration", options=NcnnOptions())
    largest = dict.fromkeys(blobs, 0.0)
    for sample in samples:
        data = np.ascontiguousarray(sample, np.float32)  # ncnn.Mat borrows this memory
        extractor = net.create_extractor()
        extractor.input(input_blob, ncnn.Mat(data))
        for blob in blobs:
            status, mat = extractor.extract(blob)
            if status != 0:
                raise ToolError(f"ncnn failed to compute blob {blob} ({status})")
            largest[blob] = max(largest[blob], float(np.abs(np.array(mat)).max()))
    return {blob: 127.0 / value if value > 0 else 1.0 for blob, value in largest.items()}


def int8_files(param: bytes, weights: bytes, scales: dict[str, float]) -> tuple[bytes, bytes]:
    """Return ``.param`` and ``.bin`` with the int8 candidates as int8 layers.

    ``weights`` is an fp32 or fp16 ``.bin``; ``scales`` are :func:`input_scales`. Other
    weighted layers stay fp32 arithmetic: large ones (:data:`CODEBOOK_MIN` weights) store
    8-bit codebook weights, small ones fp16. SFace's fully connected layer holds 6.4 M of its
    9.7 M weights: in fp16 it made the int8 file 16.2 MB, in fp32 29 MB.
    """
    header, layers = parse_param(param)
    read_weights(layers, weights)
    quantized = {layer.name for layer in int8_candidates(layers)}
    out = bytearray()
    for layer in layers:
        if layer.weight is None:
            out += layer.raw
            continue
        if layer.name not in quantized:
            if layer.weight.size >= CODEBOOK_MIN:
                table, index = codebook(layer.weight)
                out += CODEBOOK_FLAG + table.tobytes() + index.tobytes()
                out += bytes(align4(index.size) - index.size)
            else:
                out += fp16_blob(layer.weight)
            if layer.bias is not None:
                out += layer.bias.tobytes()
            continue
        rows = layer.weight.reshape(channels(layer)[1], -1)
        largest = np.abs(rows).max(axis=1)
        weight_scales = np.where(largest > 0, 127.0 / np.maximum(largest, 1e-30), 1.0)
        values = np.clip(np.rint(rows * weight_scales[:, None]), -127, 127).astype(np.int8)
        out += struct.pack("<I", INT8_TAG) + values.tobytes()
        out += bytes(align4(values.size) - values.size)
        if layer.bias is not None:
            out += layer.bias.tobytes()
        out += weight_scales.astype(np.float32).tobytes()
        out += np.float32(scales[layer.bottoms[0]]).tobytes()
        layer.params["8"] = INT8_SCALE_TERM
    return format_param(header, layers), bytes(out)


def winograd_off(param: bytes, limit: int) -> bytes:
    """Return ``param`` with winograd disabled on Convolutions of in x out >= ``limit``."""
    header, layers = parse_param(param)
    for layer in layers:
        if layer.kind == "Convolution":
            inputs, outputs = channels(layer)
            if inputs * outputs >= limit:
                mask = int(layer.params.get(FEATURE_MASK_KEY, "0")) | NO_WINOGRAD
                layer.params[FEATURE_MASK_KEY] = str(mask)
    return format_param(header, layers)

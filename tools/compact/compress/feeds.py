"""Calibration and evaluation feeds for any one-input model, from a folder split by identity.

The first 30 % of identities (sub-folders) calibrate, the rest evaluate, so that measured
fidelity comes from data the compression never saw. A face embedder (input [N, 3, 150, 150])
gets engine-aligned face chips, another image model resized photos, an audio model
([N, samples]) fixed-length windows of the WAV files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from tools.compact.compress import calibration as cal
from tools.compact.compress.graph import Feed, Graph
from tools.compact.errors import ToolError


@dataclass
class Feeds:
    """Calibration and evaluation feeds for one model."""

    calibration: list[Feed]
    evaluation: list[Feed]


@dataclass(frozen=True)
class FeedOptions:
    """Where the data comes from and how much of it to use."""

    folder: Path  # photos or WAV files in one sub-folder per identity
    samples: int = 64
    pixel_range: tuple[float, float] = (0.0, 255.0)  # an image input's value range
    window: int = 16000  # audio samples per window


def load_model(path: Path) -> onnx.ModelProto:
    """Load an ONNX model; an unreadable or invalid file is a :class:`ToolError`."""
    try:
        return onnx.load(path)
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError) as err:
        raise ToolError(f"{path}: {err}") from err


def _input_shape(model: onnx.ModelProto) -> tuple[str, list[int | str]]:
    view = Graph(model)
    if len(view.input_names) != 1:
        raise ToolError("only models with one input are supported")
    (value,) = [v for v in model.graph.input if v.name == view.input_names[0]]
    dims = [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]
    return value.name, dims


def _images(paths: list[Path], dims: list[int | str], low: float, high: float) -> np.ndarray:
    nchw = dims[1] == 3
    height, width = (dims[2], dims[3]) if nchw else (dims[1], dims[2])
    if not isinstance(height, int) or not isinstance(width, int):
        raise ToolError("the image input needs a fixed height and width")
    arrays = []
    for path in paths:
        image = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, np.float32) / 255 * (high - low) + low
        arrays.append(pixels.transpose(2, 0, 1) if nchw else pixels)
    return np.stack(arrays)


def model_feeds(model: onnx.ModelProto, options: FeedOptions) -> Feeds:
    """Calibration and evaluation feeds for ``model`` from ``options.folder``."""
    name, dims = _input_shape(model)
    samples, batch = options.samples, 1 if dims[0] == 1 else 8  # a fixed batch of 1 stays 1
    if len(dims) == 4 and dims[1:] == [3, 150, 150]:
        paths = cal.files(options.folder, cal.IMAGE_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        chipper = cal.FaceChipper()
        calib = cal.face_chips(first, per_image=2, jitter=0.05, limit=samples, chipper=chipper)
        spread = rest[:: max(1, len(rest) // samples)]
        evaluation = cal.face_chips(spread, limit=samples, chipper=chipper)
    elif len(dims) == 4 and 3 in (dims[1], dims[3]):
        paths = cal.files(options.folder, cal.IMAGE_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        low, high = options.pixel_range
        calib = _images(first[:samples], dims, low, high)
        evaluation = _images(rest[:samples], dims, low, high)
    elif len(dims) == 2:
        paths = cal.files(options.folder, cal.AUDIO_SUFFIXES)
        first, rest = cal.split_by_identity(paths)
        calib = cal.speech_windows(first, options.window)[:samples]
        evaluation = cal.speech_windows(rest, options.window)[:samples]
        batch = 1
    else:
        raise ToolError(f"no calibration data for input {name} {dims}: use an image or audio model")
    if not len(evaluation):
        raise ToolError(f"{options.folder}: no evaluation data left after the identity split")
    return Feeds(cal.batches(name, calib, batch), cal.batches(name, evaluation, batch))

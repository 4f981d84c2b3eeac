"""Inference backends behind one interface: a batch of named float32 arrays in, outputs out.

:func:`load_model` turns a pack entry into an :class:`InferenceModel` for onnxruntime or
ncnn. Model bytes come only from :meth:`ModelPack.read_verified`; the runtimes are imported
lazily, so the engine imports on machines that have only one of them.

The entry's config describes the tensors (required by ncnn, whose files do not know the
ONNX names; optional for onnxruntime, where it fixes the output order)::

    "inputs":  [{"name": "chip", "shape": [1, 3, 150, 150], "ncnn_blob": "in0"}],
    "outputs": [{"name": "descriptor", "shape": [1, 128], "ncnn_blob": "out0"}],
    "ncnn":    {"use_fp16_storage": false, "num_threads": 1, ...}

Shapes are those of one sample (batch 1) as onnxruntime sees them; ``-1`` is any size.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import BackendUnavailableError, ManifestError
from .availability import BACKENDS, ONNXRUNTIME
from .pack import ModelEntry, ModelPack


class InferenceModel(Protocol):
    """A loaded model: run a batch (first axis) of named inputs, get outputs in model order."""

    backend: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model on a batch and return one array per output."""
        ...


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One model input or output: ONNX name, one-sample shape, ncnn blob name."""

    name: str
    shape: tuple[int, ...]
    ncnn_blob: str | None = None

    def check_sample(self, array: np.ndarray) -> None:
        """Raise ``ValueError`` unless ``array`` (a batch) matches this input's shape."""
        sample = array.shape[1:]
        expected = self.shape[1:]
        if len(sample) != len(expected) or any(
            want not in (-1, got) for want, got in zip(expected, sample, strict=True)
        ):
            raise ValueError(
                f"input {self.name!r}: samples of shape {list(sample)}, "
                f"the model takes {list(expected)}"
            )


def tensor_specs(config: Mapping[str, Any], key: str, where: str) -> tuple[TensorSpec, ...]:
    """Parse ``config[key]`` (``inputs`` or ``outputs``); empty if absent."""
    raw = config.get(key, [])
    if not isinstance(raw, list):
        raise ManifestError(f"{where}.config.{key}: expected a list")
    specs = []
    for i, item in enumerate(raw):
        at = f"{where}.config.{key}[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ManifestError(f"{at}: expected an object with a 'name'")
        shape = item.get("shape")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(type(d) is int and (d > 0 or d == -1) for d in shape)
        ):
            raise ManifestError(f"{at}.shape: expected a list of sizes (-1 for any)")
        blob = item.get("ncnn_blob")
        if blob is not None and not isinstance(blob, str):
            raise ManifestError(f"{at}.ncnn_blob: expected a string")
        specs.append(TensorSpec(item["name"], tuple(shape), blob))
    return tuple(specs)


def as_batch(
    inputs: Mapping[str, np.ndarray], names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], int]:
    """Return the inputs as C-contiguous float32 arrays, and their common batch size."""
    if set(inputs) != set(names):
        raise ValueError(f"the model takes inputs {list(names)}, not {sorted(inputs)}")
    arrays = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in names}
    sizes = {array.shape[0] if array.ndim else 0 for array in arrays.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"inputs need one common, non-empty batch axis, not sizes {sizes}")
    return arrays, sizes.pop()


def import_runtime(name: str) -> Any:
    """Import the runtime module ``name`` or raise :class:`BackendUnavailableError`."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise BackendUnavailableError(f"{name} cannot be imported on this machine") from err


def load_model(
    pack: ModelPack, entry: ModelEntry, backend: str, *, threads: int = 1
) -> InferenceModel:
    """Load ``entry``'s files for ``backend`` (sha256-verified) with ``threads`` threads."""
    if backend not in BACKENDS:
        raise BackendUnavailableError(f"unknown backend {backend!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    where = f"tiers.{entry.tier}.models.{entry.task}"
    name = f"{entry.tier}/{entry.task}"
    files = entry.files.get(backend)
    if not files:
        raise ManifestError(f"{name}: the pack has no {backend} files for this model")
    data = {file.path: pack.read_verified(file) for file in files}
    outputs = tensor_specs(entry.config, "outputs", where)
    if backend == ONNXRUNTIME:
        from .backend_onnxruntime import OnnxruntimeModel

        if len(data) != 1:
            raise ManifestError(f"{where}.files.{backend}: expected one .onnx file")
        (model,) = data.values()
        return OnnxruntimeModel(model, name=name, outputs=outputs, threads=threads)
    from .backend_ncnn import NcnnModel, NcnnOptions

    by_suffix = {path.rsplit(".", 1)[-1]: blob for path, blob in data.items()}
    if len(data) != 2 or set(by_suffix) != {"param", "bin"}:
        raise ManifestError(f"{where}.files.{backend}: expected one .param and one .bin file")
    return NcnnModel(
        by_suffix["param"],
        by_suffix["bin"],
        name=name,
        inputs=tensor_specs(entry.config, "inputs", where),
        outputs=outputs,
        options=NcnnOptions.from_config(entry.config.get("ncnn", {}), where),
        threads=threads,
    )

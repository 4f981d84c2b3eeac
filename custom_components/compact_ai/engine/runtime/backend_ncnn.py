"""ncnn backend: a ``.param``/``.bin`` pair, run one sample per extractor.

ncnn's Python binding takes one sample at a time (its blobs have no batch axis) and reads
numpy buffers ignoring their strides, so every sample is handed over C-contiguous and
float32. Outputs lose the batch axis (and sometimes more); they are reshaped to the shapes
the manifest records. The weights are loaded from a private temporary file written from the
verified bytes: the binding's in-memory loader reports no error and reads without bounds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..errors import InferenceError, ManifestError
from .availability import NCNN
from .backend import TensorSpec, as_batch, import_runtime


@dataclass(frozen=True, slots=True)
class NcnnOptions:
    """Per-model ncnn options (``config["ncnn"]``); fp16 is off unless the pack enables it."""

    use_fp16_storage: bool = False
    use_fp16_arithmetic: bool = False
    use_fp16_packed: bool = False
    use_winograd_convolution: bool = True
    use_winograd43_convolution: bool = True
    use_sgemm_convolution: bool = True
    num_threads: int | None = None  # the most threads worth giving this model

    @classmethod
    def from_config(cls, raw: Any, where: str = "ncnn") -> NcnnOptions:
        """Validate a manifest's ``ncnn`` options."""
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}.config.ncnn: expected an object")
        known = {field.name for field in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                raise ManifestError(f"{where}.config.ncnn: unknown option {key!r}")
            valid = (
                type(value) is int and value > 0 if key == "num_threads" else type(value) is bool
            )
            if not valid:
                raise ManifestError(f"{where}.config.ncnn.{key}: invalid value {value!r}")
        return cls(**raw)

    def apply(self, opt: Any, threads: int) -> None:
        """Set these options on an ``ncnn.Option`` for a caller allowing ``threads`` threads."""
        opt.num_threads = min(threads, self.num_threads or threads)
        opt.use_fp16_storage = self.use_fp16_storage
        opt.use_fp16_arithmetic = self.use_fp16_arithmetic
        opt.use_fp16_packed = self.use_fp16_packed
        opt.use_winograd_convolution = self.use_winograd_convolution
        opt.use_winograd43_convolution = self.use_winograd43_convolution
        opt.use_sgemm_convolution = self.use_sgemm_convolution


def _blobs(specs: tuple[TensorSpec, ...], kind: str, name: str) -> tuple[str, ...]:
    if not specs or any(spec.ncnn_blob is None for spec in specs):
        raise ManifestError(f"{name}: the ncnn model needs config.{kind} with ncnn_blob names")
    return tuple(str(spec.ncnn_blob) for spec in specs)


def load_net(
    param: bytes, weights: bytes, *, name: str, options: NcnnOptions, threads: int = 1
) -> Any:
    """Return an ``ncnn.Net`` loaded from ``.param`` and ``.bin`` bytes with ``options``."""
    ncnn = import_runtime(NCNN)
    net = ncnn.Net()
    options.apply(net.opt, threads)
    try:
        text = param.decode("ascii")
    except UnicodeDecodeError as err:
        raise InferenceError(f"{name}: the ncnn .param file is not text") from err
    if net.load_param_mem(text) != 0:
        raise InferenceError(f"{name}: ncnn cannot parse the .param file")
    with tempfile.NamedTemporaryFile(prefix="compact_ai_", suffix=".bin") as handle:
        handle.write(weights)
        handle.flush()
        if net.load_model(handle.name) != 0:
            raise InferenceError(f"{name}: the ncnn .bin file does not fit the .param file")
    return net


class NcnnModel:
    """An ncnn network fed and read by ONNX tensor names."""

    backend = NCNN

    def __init__(
        self,
        param: bytes,
        weights: bytes,
        *,
        name: str,
        inputs: tuple[TensorSpec, ...],
        outputs: tuple[TensorSpec, ...],
        options: NcnnOptions,
        threads: int = 1,
    ) -> None:
        """Load the network; ``inputs``/``outputs`` map ONNX names to ncnn blobs."""
        in_blobs = _blobs(inputs, "inputs", name)
        out_blobs = _blobs(outputs, "outputs", name)
        if any(not 1 <= len(spec.shape) - 1 <= 4 for spec in inputs):
            raise ManifestError(f"{name}: ncnn takes inputs of 1 to 4 dimensions per sample")
        self._ncnn = import_runtime(NCNN)
        self._net = load_net(param, weights, name=name, options=options, threads=threads)
        self._name = name
        missing = (set(in_blobs) - set(self._net.input_names())) | (
            set(out_blobs) - set(self._net.output_names())
        )
        if missing:
            raise InferenceError(f"{name}: the ncnn network has no blobs {sorted(missing)}")
        self._inputs = inputs
        self._outputs = outputs
        self.input_names = tuple(spec.name for spec in inputs)
        self.output_names = tuple(spec.name for spec in outputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run a batch one sample at a time; return the outputs in ``output_names`` order."""
        arrays, batch = as_batch(inputs, self.input_names)
        for spec in self._inputs:
            spec.check_sample(arrays[spec.name])
        samples = [self._run_one({k: v[i] for k, v in arrays.items()}) for i in range(batch)]
        return [np.concatenate(parts) for parts in zip(*samples, strict=True)]

    def _run_one(self, sample: dict[str, np.ndarray]) -> list[np.ndarray]:
        # ncnn.Mat(array) borrows the array's memory, and a layer that works in place on an
        # input blob (pnnx makes one of ``x - scalar``) writes into it: the binding then
        # crashes. Each input is handed over as a copy ncnn owns.
        extractor = self._net.create_extractor()
        for spec in self._inputs:
            extractor.input(spec.ncnn_blob, self._ncnn.Mat(sample[spec.name]).clone())
        results = []
        for spec in self._outputs:
            status, mat = extractor.extract(spec.ncnn_blob)
            if status != 0:
                raise InferenceError(f"{self._name}: ncnn failed on {spec.name} ({status})")
            values = np.array(mat, dtype=np.float32)
            try:
                results.append(values.reshape(spec.shape))
            except ValueError as err:
                raise InferenceError(
                    f"{self._name}: ncnn output {spec.name} has shape {list(values.shape)}, "
                    f"the manifest says {list(spec.shape)}"
                ) from err
        return results

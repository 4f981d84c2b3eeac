"""onnxruntime backend: one CPU session per model, sequential, a fixed number of threads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

from ..errors import InferenceError
from .availability import ONNXRUNTIME
from .backend import TensorSpec, as_batch, import_runtime

LOG_ERRORS_ONLY: Final = 3


class OnnxruntimeModel:
    """An ONNX model in an onnxruntime ``InferenceSession`` built from verified bytes."""

    backend = ONNXRUNTIME

    def __init__(
        self,
        model: bytes,
        *,
        name: str,
        outputs: tuple[TensorSpec, ...] = (),
        threads: int = 1,
    ) -> None:
        """Build the session; ``outputs`` (if given) fixes the output order."""
        ort = import_runtime(ONNXRUNTIME)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = LOG_ERRORS_ONLY
        try:
            self._session: Any = ort.InferenceSession(
                model, options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime's errors derive from Exception only
            raise InferenceError(f"{name}: onnxruntime cannot load the model: {err}") from err
        self._name = name
        inputs = self._session.get_inputs()
        known = tuple(output.name for output in self._session.get_outputs())
        self.input_names = tuple(item.name for item in inputs)
        self.output_names = tuple(spec.name for spec in outputs) or known
        if not set(self.output_names) <= set(known):
            raise InferenceError(f"{name}: the model has outputs {list(known)}")
        # A model exported for batch 1 runs a larger batch one sample at a time.
        self._batch_one = any(item.shape and item.shape[0] == 1 for item in inputs)

    def run(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run a batch; return the outputs in ``output_names`` order."""
        arrays, batch = as_batch(inputs, self.input_names)
        if batch == 1 or not self._batch_one:
            return self._run(arrays)
        samples = [self._run({k: v[i : i + 1] for k, v in arrays.items()}) for i in range(batch)]
        return [np.concatenate(parts) for parts in zip(*samples, strict=True)]

    def _run(self, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return list(self._session.run(list(self.output_names), arrays))
        except Exception as err:  # onnxruntime's errors derive from Exception only
            raise InferenceError(f"{self._name}: onnxruntime failed: {err}") from err

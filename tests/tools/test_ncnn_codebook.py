"""8-bit codebook ncnn weights: half the bytes, loaded by ncnn, outputs close to fp16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.onnx_graphs import residual_cnn, run_on_ncnn
from tools.compact.errors import ToolError
from tools.compact.ncnn.codebook import LEVELS, codebook, codebook_weights
from tools.compact.ncnn.export import cosine, export_ncnn, io_config


def test_codebook_is_a_fine_deterministic_quantizer() -> None:
    values = np.random.default_rng(0).standard_normal(20000).astype(np.float32)
    table, index = codebook(values)
    assert table.shape == (LEVELS,)
    assert index.dtype == np.uint8
    restored = table[index]
    assert len(np.unique(restored)) <= LEVELS
    assert np.abs(restored - values).max() < 0.05  # 256 levels over about 8 sigma
    uniform = np.linspace(values.min(), values.max(), LEVELS)
    nearest = uniform[np.abs(values[:, None] - uniform[None, :]).argmin(axis=1)]
    assert np.mean((restored - values) ** 2) < np.mean((nearest - values) ** 2)
    again_table, again_index = codebook(values)
    assert np.array_equal(table, again_table)
    assert np.array_equal(index, again_index)


def test_few_distinct_weights_are_kept_exactly() -> None:
    values = np.array([0.5, -0.25, 0.5, 2.0, -0.25], np.float32)
    table, index = codebook(values)
    assert np.array_equal(table[index], values)


def test_codebook_bin_loads_in_ncnn_and_agrees(tmp_path: Path) -> None:
    model = residual_cnn()
    onnx.save(model, tmp_path / "cnn.onnx")
    param, weights = export_ncnn(tmp_path / "cnn.onnx", tmp_path, fp16=True)
    fp16 = weights.read_bytes()
    packed = codebook_weights(param.read_bytes(), fp16)
    assert packed != fp16
    assert codebook_weights(param.read_bytes(), fp16) == packed
    config = io_config(model)
    image = np.random.default_rng(1).normal(size=(1, 3, 16, 16)).astype(np.float32)
    assert (
        cosine(
            run_on_ncnn(param.read_bytes(), fp16, config, image),
            run_on_ncnn(param.read_bytes(), packed, config, image),
        )
        > 0.999
    )
    with pytest.raises(ToolError, match="already quantized"):
        codebook_weights(param.read_bytes(), packed)
    with pytest.raises(ToolError, match="shorter"):
        codebook_weights(param.read_bytes(), fp16[:-8])
    with pytest.raises(ToolError, match="does not describe"):
        codebook_weights(param.read_bytes(), fp16 + bytes(4))
    odd = param.read_bytes().replace(b"\nPooling ", b"\nLRN ")
    with pytest.raises(ToolError, match="not known"):
        codebook_weights(odd, fp16)


def test_real_embedder_takes_about_one_byte_per_weight() -> None:
    from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack

    folder = build_reference_pack() / REFERENCE_TIER
    if not (folder / "face_embedder.param").exists():
        pytest.skip("no reference ncnn embedder")
    param = (folder / "face_embedder.param").read_bytes()
    weights = (folder / "face_embedder.bin").read_bytes()
    packed = codebook_weights(param, weights)
    assert len(packed) < 0.3 * len(weights)  # the reference ncnn files are fp32

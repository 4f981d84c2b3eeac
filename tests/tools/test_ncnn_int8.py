"""ncnn int8 convolutions and per-layer winograd switches: valid files, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from custom_components.compact_ai.engine.runtime.backend import tensor_specs
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tests.onnx_graphs import residual_cnn, run_on_ncnn
from tools.compact.errors import ToolError
from tools.compact.ncnn.export import cosine, export_ncnn, io_config
from tools.compact.ncnn.files import parse_param
from tools.compact.ncnn.int8 import input_scales, int8_files, winograd_off

WIDTH = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, dict[str, object]]:
    folder = tmp_path_factory.mktemp("int8")
    model = residual_cnn(width=WIDTH)
    onnx.save(model, folder / "cnn.onnx")
    param, weights = export_ncnn(folder / "cnn.onnx", folder)
    return param.read_bytes(), weights.read_bytes(), io_config(model)


def images(seed: int, count: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 3, 16, 16)).astype(np.float32)


def conv_params(param: bytes, kind: str = "Convolution") -> list[dict[str, str]]:
    return [layer.params for layer in parse_param(param)[1] if layer.kind == kind]


def test_int8_convolutions_load_and_agree(exported: tuple[bytes, bytes, dict[str, object]]) -> None:
    param, weights, config = exported
    scales = input_scales(param, weights, "in0", images(0, 16))
    # Samples that are views of another layout (as chips from HWC images) calibrate the same.
    strided = np.ascontiguousarray(images(0, 16).transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert input_scales(param, weights, "in0", strided) == scales
    int8_param, int8_weights = int8_files(param, weights, scales)
    assert int8_files(param, weights, scales) == (int8_param, int8_weights)  # deterministic
    # The first conv (3 colour channels) stays float; the 32-channel one becomes int8.
    assert [p.get("8") for p in conv_params(int8_param)] == [None, "2"]
    assert len(int8_weights) < len(weights) - 3 * WIDTH * WIDTH * 9 / 2
    test = images(1, 8)
    reference = run_on_ncnn(param, weights, config, test)
    quantized = run_on_ncnn(int8_param, int8_weights, config, test)
    assert cosine(reference, quantized) > 0.995
    assert not np.array_equal(reference, quantized)  # integer kernels really ran
    with pytest.raises(ToolError, match="already an int8 layer"):
        int8_files(int8_param, int8_weights, scales)
    with pytest.raises(ToolError, match="shorter"):
        int8_files(param, weights[:-8], scales)


def test_winograd_is_switched_off_only_on_wide_convolutions(
    exported: tuple[bytes, bytes, dict[str, object]],
) -> None:
    param, weights, config = exported
    masked = winograd_off(param, WIDTH * WIDTH)
    assert [p.get("31") for p in conv_params(masked)] == [None, "64"]
    assert winograd_off(param, WIDTH * WIDTH + 1) == winograd_off(param, 10**9)
    assert [p.get("31") for p in conv_params(winograd_off(param, 1))] == ["64", "64"]
    test = images(2, 4)
    assert (
        cosine(
            run_on_ncnn(param, weights, config, test), run_on_ncnn(masked, weights, config, test)
        )
        > 0.99999
    )


def test_real_embedder_convolutions_become_int8(tmp_path: Path) -> None:
    from tools.compact.pack.reference import REFERENCE_TIER, build_reference_pack

    folder = build_reference_pack() / REFERENCE_TIER
    if not (folder / "face_embedder.param").exists():
        pytest.skip("no reference ncnn embedder")
    param = (folder / "face_embedder.param").read_bytes()
    weights = (folder / "face_embedder.bin").read_bytes()
    chips = np.random.default_rng(0).uniform(0, 255, (2, 3, 150, 150)).astype(np.float32)
    scales = input_scales(param, weights, "in0", chips)
    int8_param, int8_weights = int8_files(param, weights, scales)
    terms = [p.get("8") for p in conv_params(int8_param)]
    assert terms[0] is None
    assert terms[1:] == ["2"] * (len(terms) - 1)
    assert len(int8_weights) < 0.27 * len(weights)  # about one byte per weight


def test_sface_prelu_and_batchnorm_blobs_are_carried_over() -> None:
    """SFace's ncnn files hold PReLU slopes and a BatchNorm: int8 and codebook files keep them."""
    from tools.compact.ncnn.codebook import codebook_weights
    from tools.compact.pack.reference import SFACE_TIER, build_reference_pack

    root = build_reference_pack()
    folder = root / SFACE_TIER
    param = (folder / "face_embedder.param").read_bytes()
    weights = (folder / "face_embedder.bin").read_bytes()
    kinds = {layer.kind for layer in parse_param(param)[1]}
    assert {"PReLU", "BatchNorm", "ConvolutionDepthWise"} <= kinds
    config = ModelPack.load(root).model(SFACE_TIER, "face_embedder").config
    chips = np.random.default_rng(0).uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)

    def run(param: bytes, weights: bytes) -> np.ndarray:
        specs = {kind: tensor_specs(config, kind, "sface") for kind in ("inputs", "outputs")}
        model = NcnnModel(param, weights, name="sface", **specs, options=NcnnOptions())
        return model.run({"chip": chips})[0]

    reference = run(param, weights)
    scales = input_scales(param, weights, "in0", chips)
    int8_param, int8_weights = int8_files(param, weights, scales)
    # about one byte per weight: the 6.4 M-weight fully connected layer in an 8-bit codebook
    fully_connected = conv_params(param, "InnerProduct")
    assert int(fully_connected[0]["2"]) > 6_000_000
    assert len(int8_weights) < 10_500_000
    # lossy, but close: misplaced slopes or BatchNorm vectors would give unrelated outputs
    assert cosine(reference, run(int8_param, int8_weights)) > 0.95
    assert cosine(reference, run(param, codebook_weights(param, weights))) > 0.95

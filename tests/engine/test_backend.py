"""Inference backends: onnxruntime and ncnn run the same pack entry to the same outputs."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from typing import Any

import ncnn
import numpy as np
import onnx
import onnxruntime
import pytest

from custom_components.compact_ai.engine.errors import (
    BackendUnavailableError,
    InferenceError,
    ManifestError,
    ModelIntegrityError,
)
from custom_components.compact_ai.engine.runtime.backend import load_model
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnOptions
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from custom_components.compact_ai.engine.runtime.pack import ModelPack
from tests.onnx_graphs import SIZE, residual_cnn
from tools.compact.ncnn.export import cosine, export_ncnn, io_config
from tools.compact.pack.writer import add_model

TIER, TASK = "balanced", "embedder"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic model as .onnx, .param and .bin (pnnx runs once per module)."""
    folder = tmp_path_factory.mktemp("model")
    onnx.save(residual_cnn(), folder / "embedder.onnx")
    export_ncnn(folder / "embedder.onnx", folder)
    return folder


def write_pack(root: Path, source: Path, **config: Any) -> ModelPack:
    folder = root / TIER
    shutil.copytree(source, folder)
    files = {
        "onnxruntime": [folder / "embedder.onnx"],
        "ncnn": [folder / "embedder.param", folder / "embedder.bin"],
    }
    add_model(root, TIER, TASK, files, config=io_config(residual_cnn()) | config)
    return ModelPack.load(root)


@pytest.fixture
def pack(tmp_path: Path, model_files: Path) -> ModelPack:
    return write_pack(tmp_path, model_files)


def images(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, 3, SIZE, SIZE)).astype(np.float32)


def test_backends_agree_on_a_batch(pack: ModelPack) -> None:
    entry = pack.model(TIER, TASK)
    ort_model = load_model(pack, entry, "onnxruntime")
    ncnn_model = load_model(pack, entry, "ncnn")
    assert (ort_model.backend, ncnn_model.backend) == ("onnxruntime", "ncnn")
    for model in (ort_model, ncnn_model):
        assert model.input_names == ("image",)
        assert model.output_names == ("embedding", "features")
    batch = images(3)
    expected = ort_model.run({"image": batch})
    actual = ncnn_model.run({"image": batch})
    assert [a.shape for a in actual] == [(3, 10), (3, 8, 8, 8)]
    assert [a.shape for a in expected] == [(3, 10), (3, 8, 8, 8)]
    for want, got in zip(expected, actual, strict=True):
        assert got.dtype == np.float32
        for i in range(3):
            assert cosine(want[i], got[i]) >= 0.9999
    # One sample at a time gives the same as the batch.
    single = ncnn_model.run({"image": batch[1:2]})
    np.testing.assert_allclose(single[0], actual[0][1:2], rtol=1e-6, atol=1e-6)


def test_non_contiguous_input_is_read_correctly(pack: ModelPack) -> None:
    entry = pack.model(TIER, TASK)
    nhwc = np.random.default_rng(2).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    strided = nhwc.transpose(0, 3, 1, 2)  # a view: NCHW shape, NHWC memory
    assert not strided.flags.c_contiguous
    for backend in ("onnxruntime", "ncnn"):
        model = load_model(pack, entry, backend)
        as_view = model.run({"image": strided})
        as_copy = model.run({"image": np.ascontiguousarray(strided)})
        for a, b in zip(as_view, as_copy, strict=True):
            np.testing.assert_array_equal(a, b)
    # ncnn.Mat on its own ignores the strides: this is what the backend protects against.
    net_input = ncnn.Mat(strided[0])
    assert not np.array_equal(np.array(net_input), strided[0])


def test_float64_input_is_converted(pack: ModelPack) -> None:
    model = load_model(pack, pack.model(TIER, TASK), "ncnn")
    batch = images(1)
    np.testing.assert_array_equal(
        model.run({"image": batch.astype(np.float64)})[0], model.run({"image": batch})[0]
    )


def test_wrong_inputs_are_refused(pack: ModelPack) -> None:
    for backend in ("onnxruntime", "ncnn"):
        model = load_model(pack, pack.model(TIER, TASK), backend)
        with pytest.raises(ValueError, match="takes inputs"):
            model.run({"chip": images(1)})
    ncnn_model = load_model(pack, pack.model(TIER, TASK), "ncnn")
    with pytest.raises(ValueError, match="the model takes"):
        ncnn_model.run({"image": np.zeros((1, 3, SIZE + 1, SIZE), np.float32)})


def test_tampered_bytes_never_reach_a_runtime(
    pack: ModelPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a runtime saw unverified bytes")

    monkeypatch.setattr(onnxruntime, "InferenceSession", forbidden)
    monkeypatch.setattr(ncnn, "Net", forbidden)
    for name in ("embedder.onnx", "embedder.bin"):
        path = pack.root / TIER / name
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    for backend in ("onnxruntime", "ncnn"):
        with pytest.raises(ModelIntegrityError, match="sha256 does not match"):
            load_model(pack, pack.model(TIER, TASK), backend)


def test_truncated_and_missing_files_are_refused(pack: ModelPack) -> None:
    bin_path = pack.root / TIER / "embedder.bin"
    bin_path.write_bytes(bin_path.read_bytes()[:-4])
    with pytest.raises(ModelIntegrityError, match="truncated"):
        load_model(pack, pack.model(TIER, TASK), "ncnn")
    (pack.root / TIER / "embedder.onnx").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        load_model(pack, pack.model(TIER, TASK), "onnxruntime")


def test_verified_but_unloadable_files_raise_inference_error(
    tmp_path: Path, model_files: Path
) -> None:
    # Files the manifest pins faithfully, but which the runtimes cannot use.
    source = tmp_path / "bad"
    shutil.copytree(model_files, source)
    (source / "embedder.onnx").write_bytes(b"not an onnx model")
    weights = source / "embedder.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    pack = write_pack(tmp_path / "pack", source)
    entry = pack.model(TIER, TASK)
    with pytest.raises(InferenceError, match="onnxruntime cannot load"):
        load_model(pack, entry, "onnxruntime")
    with pytest.raises(InferenceError, match=r"does not fit the \.param"):
        load_model(pack, entry, "ncnn")


def test_ncnn_needs_blob_names(tmp_path: Path, model_files: Path) -> None:
    pack = write_pack(tmp_path, model_files, inputs=[], outputs=[])
    with pytest.raises(ManifestError, match="ncnn_blob"):
        load_model(pack, pack.model(TIER, TASK), "ncnn")
    # onnxruntime knows the names from the model itself.
    model = load_model(pack, pack.model(TIER, TASK), "onnxruntime")
    assert model.output_names == ("embedding", "features")


def test_missing_backend_files_and_unknown_backend(tmp_path: Path, model_files: Path) -> None:
    shutil.copytree(model_files, tmp_path / TIER)
    add_model(tmp_path, TIER, TASK, {"onnxruntime": [tmp_path / TIER / "embedder.onnx"]})
    pack = ModelPack.load(tmp_path)
    with pytest.raises(ManifestError, match="no ncnn files"):
        load_model(pack, pack.model(TIER, TASK), "ncnn")
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        load_model(pack, pack.model(TIER, TASK), "tflite")


def test_ncnn_options_come_from_the_manifest(tmp_path: Path, model_files: Path) -> None:
    options = {"use_fp16_storage": True, "use_winograd_convolution": False, "num_threads": 1}
    pack = write_pack(tmp_path, model_files, ncnn=options)
    parsed = NcnnOptions.from_config(pack.model(TIER, TASK).config["ncnn"])
    assert parsed == NcnnOptions(
        use_fp16_storage=True, use_winograd_convolution=False, num_threads=1
    )
    opt = ncnn.Option()
    parsed.apply(opt, threads=4)
    assert (opt.num_threads, opt.use_fp16_storage, opt.use_winograd_convolution) == (1, True, False)
    NcnnOptions().apply(opt, threads=2)
    assert (opt.num_threads, opt.use_fp16_storage, opt.use_fp16_arithmetic) == (2, False, False)
    # fp16 storage is really used: outputs move a little, but stay close.
    fp16 = load_model(pack, pack.model(TIER, TASK), "ncnn").run({"image": images(1)})
    fp32 = load_model(pack, pack.model(TIER, TASK), "onnxruntime").run({"image": images(1)})
    assert not np.array_equal(fp16[1], fp32[1])
    assert cosine(fp16[1], fp32[1]) > 0.999


@pytest.mark.parametrize(
    "options",
    [{"use_fp16_storag": True}, {"use_fp16_storage": 1}, {"num_threads": 0}, ["x"]],
)
def test_bad_ncnn_options_are_refused(options: Any) -> None:
    with pytest.raises(ManifestError):
        NcnnOptions.from_config(options)


def test_engine_runs_on_ncnn_without_onnxruntime(
    pack: ModelPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = load_model(pack, pack.model(TIER, TASK), "ncnn").run({"image": images(1)})
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # "import onnxruntime" now fails
    for name in [n for n in sys.modules if n.startswith("custom_components.compact_ai.engine")]:
        monkeypatch.delitem(sys.modules, name)
    backend = importlib.import_module("custom_components.compact_ai.engine.runtime.backend")
    fresh_pack = importlib.import_module("custom_components.compact_ai.engine.runtime.pack")
    errors = importlib.import_module("custom_components.compact_ai.engine.errors")
    pack = fresh_pack.ModelPack.load(pack.root)
    entry = pack.model(TIER, TASK)
    outputs = backend.load_model(pack, entry, "ncnn").run({"image": images(1)})
    for a, b in zip(outputs, reference, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(errors.BackendUnavailableError, match="onnxruntime cannot be imported"):
        backend.load_model(pack, entry, "onnxruntime")


def test_onnxruntime_runs_a_batch_one_model_sample_by_sample() -> None:
    model = residual_cnn()
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 1
    session = OnnxruntimeModel(model.SerializeToString(), name="fixed")
    batch = images(3)
    embedding, features = session.run({"image": batch})
    assert (embedding.shape, features.shape) == ((3, 10), (3, 8, 8, 8))
    for i in range(3):
        single = session.run({"image": batch[i : i + 1]})
        np.testing.assert_array_equal(single[0], embedding[i : i + 1])


# An ncnn layer working in place on the input blob (pnnx makes one of ONNX ``x - 127.5``).
IN_PLACE_PARAM = (
    "7767517\n2 2\nInput in0 0 1 in0\nBinaryOp sub_0 1 1 in0 out0 0=1 1=1 2=1.275000e+02\n"
)
IN_PLACE_RUN = """
import numpy as np
from custom_components.compact_ai.engine.runtime.backend import TensorSpec
from custom_components.compact_ai.engine.runtime.backend_ncnn import NcnnModel, NcnnOptions
model = NcnnModel(
    {param!r}.encode(), b"", name="in_place",
    inputs=(TensorSpec("x", (1, 3, 8, 8), "in0"),),
    outputs=(TensorSpec("y", (1, 3, 8, 8), "out0"),),
    options=NcnnOptions(),
)
x = np.arange(3 * 64, dtype=np.float32).reshape(1, 3, 8, 8)
for _ in range(20):
    (y,) = model.run({{"x": x}})
assert np.array_equal(y, x - 127.5), y
assert np.array_equal(x, np.arange(3 * 64, dtype=np.float32).reshape(1, 3, 8, 8))
print("ok")
"""


def test_ncnn_layer_in_place_on_the_input_leaves_the_caller_array_alone() -> None:
    """Without a copy the binding writes into (and crashes on) memory numpy owns."""
    import subprocess

    code = IN_PLACE_RUN.format(param=IN_PLACE_PARAM)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"

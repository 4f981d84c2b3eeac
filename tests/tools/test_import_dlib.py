"""The dlib ResNet importer: parsing checks and numerical equivalence with dlib-bin."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest

from tools.compact.errors import ToolError
from tools.compact.importers.dlib_resnet import import_dlib_resnet
from tools.compact.pack.sources import source_path
from tools.compact.paths import EVALDATA_DIR

ort = pytest.importorskip("onnxruntime")

MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR_NAME = "shape_predictor_5_face_landmarks.dat"
LFW_DIR = EVALDATA_DIR / "faces"


@pytest.fixture(scope="module")
def dat_path() -> Path:
    return source_path(MODEL_NAME)


@pytest.fixture(scope="module")
def model(dat_path: Path) -> onnx.ModelProto:
    return import_dlib_resnet(dat_path)


@pytest.fixture(scope="module")
def session(model: onnx.ModelProto) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def dlib() -> ModuleType:
    return pytest.importorskip("dlib")


def _face_chips(dlib: ModuleType, images: list[np.ndarray]) -> list[np.ndarray]:
    """Return dlib's aligned 150x150 chip of the best-scoring face of every image that has one."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(source_path(PREDICTOR_NAME)))
    chips = []
    for image in images:
        boxes, scores, _ = detector.run(image, 1, 0)
        if boxes:
            best = boxes[int(np.argmax(scores))]
            chips.append(dlib.get_face_chip(image, predictor(image, best), size=150))
    return chips


def _assert_matches_dlib(dlib: ModuleType, session: Any, chips: list[np.ndarray]) -> None:
    recognizer = dlib.face_recognition_model_v1(str(source_path(MODEL_NAME)))
    expected = np.array([recognizer.compute_face_descriptor(chip) for chip in chips], np.float32)
    batch = np.stack(chips).transpose(0, 3, 1, 2).astype(np.float32)
    (actual,) = session.run(None, {"chip": batch})
    assert actual.shape == (len(chips), 128)
    cosine = (actual * expected).sum(1) / np.linalg.norm(actual, axis=1)
    cosine /= np.linalg.norm(expected, axis=1)
    assert np.abs(actual - expected).max() <= 1e-5
    assert cosine.min() >= 0.99999


def test_graph_is_clean_and_valid(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    ops = Counter(node.op_type for node in model.graph.node)
    assert ops == {
        "Sub": 1,
        "Mul": 1,
        "Conv": 29,
        "Relu": 29,
        "MaxPool": 1,
        "AveragePool": 4,
        "Pad": 5,
        "Add": 14,
        "GlobalAveragePool": 1,
        "Flatten": 1,
        "Gemm": 1,
    }
    (chip,) = model.graph.input
    (descriptor,) = model.graph.output
    assert (chip.name, descriptor.name) == ("chip", "descriptor")
    dims = chip.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, 150, 150]
    weights = [init for init in model.graph.initializer if init.name.endswith((".weight", ".bias"))]
    affine_channels = 32 + 6 * 32 + 8 * 64 + 6 * 128 + 8 * 256  # gamma and beta were folded
    assert sum(int(np.prod(init.dims)) for init in weights) == 5_614_592 - 2 * affine_channels
    assert {"conv1.weight", "level3.block0.conv_a.weight", "fc.weight"} <= {
        init.name for init in model.graph.initializer
    }


def test_matches_dlib_on_real_face_chips(dlib: ModuleType, session: Any) -> None:
    from PIL import Image

    skimage_data = pytest.importorskip("skimage.data")
    photo = skimage_data.astronaut()
    pil = Image.fromarray(photo)
    images = [photo, np.ascontiguousarray(photo[:, ::-1])]
    images += [np.asarray(pil.rotate(angle, resample=Image.BILINEAR)) for angle in (-12, 9)]
    images.append((photo * 0.6).astype(np.uint8))  # darker exposure
    chips = _face_chips(dlib, images)
    assert len(chips) == len(images)
    _assert_matches_dlib(dlib, session, chips)


def test_matches_dlib_on_synthetic_chips(dlib: ModuleType, session: Any) -> None:
    rng = np.random.default_rng(1234)
    rows, cols = np.mgrid[0:150, 0:150] * (255 / 149)
    gradient = np.stack([cols, rows, 255 - cols], axis=-1)
    chips = [
        rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),
        rng.integers(0, 256, (150, 150, 3), dtype=np.uint8),
        np.zeros((150, 150, 3), np.uint8),
        np.full((150, 150, 3), 255, np.uint8),
        gradient.astype(np.uint8),
    ]
    _assert_matches_dlib(dlib, session, chips)


@pytest.mark.skipif(not LFW_DIR.is_dir(), reason="../shared/evaldata/faces is not available")
def test_matches_dlib_on_lfw_faces(dlib: ModuleType, session: Any) -> None:
    from PIL import Image

    paths = sorted(LFW_DIR.glob("*/*_0001.jpg"))[:8]
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    chips = _face_chips(dlib, images)
    assert len(chips) >= 6
    _assert_matches_dlib(dlib, session, chips)


def test_truncated_file_names_file_and_offset(dat_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(dat_path.read_bytes()[: 1 << 20])
    with pytest.raises(
        ToolError, match=r"truncated\.dat: unexpected end of file .* at byte \d+ \(layer \d+ con"
    ):
        import_dlib_resnet(truncated)


def test_truncated_header_names_layer(dat_path: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "header.dat"
    truncated.write_bytes(dat_path.read_bytes()[:100])
    with pytest.raises(ToolError, match=r"header\.dat: .* at byte 100 \(layer 36 "):
        import_dlib_resnet(truncated)


def test_trailing_garbage_is_rejected(dat_path: Path, tmp_path: Path) -> None:
    padded = tmp_path / "padded.dat"
    shutil.copyfile(dat_path, padded)
    with padded.open("ab") as handle:
        handle.write(b"\x01\x02garbage")
    with pytest.raises(ToolError, match=r"padded\.dat: 9 trailing bytes .* at byte 22466066"):
        import_dlib_resnet(padded)


def test_corrupt_version_string_names_offset(dat_path: Path, tmp_path: Path) -> None:
    data = bytearray(dat_path.read_bytes())
    data[300] = ord("X")  # inside "input_rgb_image_sized", which starts at byte 289
    corrupt = tmp_path / "corrupt.dat"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ToolError, match=r"corrupt\.dat: version .* at byte 289 \(layer 131 input"):
        import_dlib_resnet(corrupt)


def test_other_dlib_file_is_rejected() -> None:
    predictor = source_path(PREDICTOR_NAME)
    pattern = rf"{re.escape(PREDICTOR_NAME)}: .* at byte \d+ \(layer 0 loss_metric_\)"
    with pytest.raises(ToolError, match=pattern):
        import_dlib_resnet(predictor)


def test_missing_file_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="cannot read"):
        import_dlib_resnet(tmp_path / "missing.dat")

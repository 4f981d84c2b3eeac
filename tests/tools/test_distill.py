"""Distillation: the JAX graph is the ONNX graph, a student learns, a run resumes.

JAX is an optional extra of the toolkit (requirements_train.txt): the tests that train are
skipped without it; the data and error handling are tested everywhere.
"""

from __future__ import annotations

import shutil
import sys
from importlib.util import find_spec
from pathlib import Path
from unittest.mock import patch

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper
from PIL import Image

from custom_components.compact_ai.engine.face.align import ALIGNMENTS, ARCFACE_112
from custom_components.compact_ai.engine.runtime.backend_onnxruntime import OnnxruntimeModel
from tools.compact.compress.calibration import FaceChipper
from tools.compact.errors import ToolError
from tools.compact.pack.heldout import embed
from tools.compact.pack.reference import build_reference_pack
from tools.compact.pack.sources import source_path
from tools.compact.train.distill import (
    Recipe,
    Teacher,
    blend,
    blended,
    distill,
    mean_loss,
    normalized,
    require_jax,
    training_set,
    with_blends,
)
from tools.compact.train.distill_run import cached_smaller
from tools.compact.train.onnx_jax import JaxGraph
from tools.compact.train.resolution import at_input_size

needs_jax = pytest.mark.skipif(find_spec("jax") is None, reason="JAX: requirements_train.txt")
PHOTOS = ("astronaut.png", "t1.jpg", "Tom_Hanks_54745.png")


@pytest.fixture(scope="module")
def teacher() -> onnx.ModelProto:
    return onnx.load(build_reference_pack() / "reference_sface" / "face_embedder.onnx")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three face photos, a photo without a face and a file that is no image."""
    folder = tmp_path_factory.mktemp("faces_train")
    for name in (*PHOTOS, "coffee.png"):
        shutil.copy(source_path(name), folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not a JPEG")
    return sorted(folder.iterdir())


@pytest.fixture(scope="module")
def chips(photos: list[Path]) -> np.ndarray:
    found = training_set(photos, FaceChipper(alignment=ARCFACE_112), 2, 0.05)
    return found.chips


@pytest.fixture(scope="module")
def small_chips(photos: list[Path]) -> np.ndarray:
    """The same faces and jitters as ``chips``, cut at 80 px as the engine cuts them."""
    return training_set(photos, FaceChipper(alignment=ALIGNMENTS["arcface_80"]), 2, 0.05).chips


def _targets(teacher: onnx.ModelProto, chips: np.ndarray) -> np.ndarray:
    runner = OnnxruntimeModel(teacher.SerializeToString(), name="teacher")
    return normalized(embed(runner, chips.astype(np.float32))).astype(np.float32)


def _spoiled(teacher: onnx.ModelProto) -> onnx.ModelProto:
    """The teacher with every trainable weight scaled by random factors: a student to train."""
    student = onnx.ModelProto()
    student.CopyFrom(teacher)
    trainable = JaxGraph(teacher).params
    rng = np.random.default_rng(0)
    for init in student.graph.initializer:
        if init.name in trainable:
            value = numpy_helper.to_array(init)
            noisy = value * rng.normal(1.0, 0.3, value.shape).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(noisy, init.name))
    return student


def test_training_photos_without_a_face_or_unreadable_are_skipped_and_counted(
    photos: list[Path],
) -> None:
    found = training_set(photos, FaceChipper(alignment=ARCFACE_112), 2, 0.05)
    assert found.images == 5
    assert [Path(p).name for p in found.unreadable] == ["broken.jpg"]
    assert [Path(p).name for p in found.without_face] == ["coffee.png"]
    assert found.chips.shape[1:] == (3, 112, 112) and found.chips.dtype == np.uint8
    assert len(found.chips) >= 2 * len(PHOTOS)
    again = training_set(photos, FaceChipper(alignment=ARCFACE_112), 2, 0.05)
    assert again.data_sha256 == found.data_sha256
    (photos[0].parent / "broken.jpg").write_bytes(b"\xff\xd8\xff other bytes")
    changed = training_set(photos, FaceChipper(alignment=ARCFACE_112), 2, 0.05)
    assert changed.data_sha256 != found.data_sha256


def test_an_operator_distillation_cannot_run_is_named(teacher: onnx.ModelProto) -> None:
    graph = onnx.ModelProto()
    graph.CopyFrom(teacher)
    graph.graph.node.append(helper.make_node("MaxPool", ["embedding"], ["pooled"]))
    with pytest.raises(ToolError, match="cannot run these operators: MaxPool"):
        JaxGraph(graph)


def test_without_jax_the_message_says_how_to_install_it() -> None:
    with patch.dict(sys.modules, {"jax": None}), pytest.raises(ToolError) as err:
        require_jax()
    assert "requirements_train.txt" in str(err.value)


@needs_jax
def test_the_jax_graph_computes_what_onnxruntime_computes(
    teacher: onnx.ModelProto, chips: np.ndarray
) -> None:
    graph = JaxGraph(teacher)
    ours = normalized(np.asarray(graph.apply(graph.params, chips.astype(np.float32))))
    cosine = np.sum(ours * _targets(teacher, chips), axis=1)
    assert cosine.min() >= 0.9999


@needs_jax
def test_a_student_learns_its_teacher_and_an_interrupted_run_resumes(
    teacher: onnx.ModelProto, chips: np.ndarray, tmp_path: Path
) -> None:
    targets = _targets(teacher, chips)
    student = _spoiled(teacher)
    recipe = Recipe(epochs=2, batch=4, learning_rate=1e-3)
    straight = distill(student, chips, targets, recipe)
    assert mean_loss(straight.model, chips, targets) < 0.75 * mean_loss(student, chips, targets)

    checkpoint = tmp_path / "checkpoint.npz"

    def stop_after_the_first_epoch(line: str) -> None:
        if "epoch 1/2" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distill(student, chips, targets, recipe, checkpoint, say=stop_after_the_first_epoch)
    resumed = distill(student, chips, targets, recipe, checkpoint)
    assert resumed.resumed_from == 1
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-4)
    for a, b in zip(resumed.model.graph.initializer, straight.model.graph.initializer, strict=True):
        np.testing.assert_allclose(
            numpy_helper.to_array(a), numpy_helper.to_array(b), rtol=1e-4, atol=1e-6
        )

    checkpoint.write_bytes(b"damaged")  # a broken checkpoint: training starts again
    again = distill(student, chips, targets, recipe, checkpoint)
    assert again.resumed_from == 0 and len(again.losses) == 2


def _box(chip: np.ndarray, size: int) -> np.ndarray:
    """Box-resize a (3, S, S) chip channel by channel, in float."""
    return np.stack(
        [
            np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BOX))
            for c in chip.astype(np.float32)
        ]
    )


def test_a_blend_is_the_same_at_the_teachers_and_the_students_size(chips: np.ndarray) -> None:
    """The student learns the teacher's embedding of a blend: both must see the same blend."""
    small = np.stack([_box(c, 56) for c in chips])
    plan = blend(chips, 0.5, np.random.default_rng(3))
    mixed, partner, weight = plan
    assert len(mixed) == round(0.5 * len(chips)) and np.all((weight >= 0.5) & (weight <= 1))
    big = blended(chips, plan)
    m, p, w = mixed[0], partner[0], weight[0]
    np.testing.assert_allclose(big[m], w * chips[m] + (1 - w) * chips[p].astype(np.float32))
    others = np.setdiff1d(np.arange(len(chips)), mixed)
    np.testing.assert_array_equal(big[others], chips[others])
    shrunk = np.stack([_box(c, 56) for c in big])
    np.testing.assert_allclose(blended(small, plan), shrunk, atol=1e-3)


def test_a_blend_takes_the_teachers_embedding_of_the_same_faces_blended(
    teacher: onnx.ModelProto, chips: np.ndarray, small_chips: np.ndarray
) -> None:
    """The student's 80 px blend is taught by SFace's 112 px blend; the rest keep their targets."""
    targets = _targets(teacher, chips)
    plan = blend(small_chips, 0.5, np.random.default_rng(5))
    mixed = plan[0]
    others = np.setdiff1d(np.arange(len(chips)), mixed)
    x, goal = with_blends(small_chips, targets, chips, plan, lambda c: _targets(teacher, c))
    np.testing.assert_array_equal(x, blended(small_chips, plan))
    np.testing.assert_array_equal(goal[others], targets[others])
    np.testing.assert_allclose(
        goal[mixed], _targets(teacher, blended(chips, plan)[mixed]), atol=1e-6
    )
    real = (plan[1] != mixed) & (plan[2] < 0.9)  # own partner or weight ~1: about itself
    assert real.any()
    moved = np.sum(goal[mixed][real] * targets[mixed][real], axis=1)
    assert np.all(moved < 0.999)  # each blend is a new face, not its larger part's


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ({"mix": -0.1}, "0 to 1, not -0.1"),
        ({"mix": 1.5}, "0 to 1, not 1.5"),
        ({"mix": 0.01}, "--mix 0.01 blends no chip of a batch of 32"),
        ({"per_image": 0}, "--per-image is how many chips each photo gives, not 0"),
    ],
)
def test_a_recipe_that_trains_on_nothing_is_refused(recipe: dict[str, float], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        Recipe(**recipe)  # type: ignore[arg-type]


@needs_jax
def test_a_student_learns_the_teachers_embedding_of_blended_faces(
    teacher: onnx.ModelProto, chips: np.ndarray
) -> None:
    targets = _targets(teacher, chips)
    student = _spoiled(teacher)
    recipe = Recipe(epochs=2, batch=4, learning_rate=1e-3, mix=0.5)
    with pytest.raises(ToolError, match="needs the teacher"):
        distill(student, chips, targets, recipe)
    with pytest.raises(ToolError, match="not the student's faces"):
        distill(student, chips, targets, recipe, teacher=Teacher(teacher, chips[:-1]))
    trained = distill(student, chips, targets, recipe, teacher=Teacher(teacher, chips)).model
    plan = blend(chips, 1.0, np.random.default_rng(7))
    faces = blended(chips, plan)  # blends of these faces it may not have seen
    goal = _targets(teacher, faces)
    assert mean_loss(trained, faces, goal) < 0.75 * mean_loss(student, faces, goal)


def test_a_smaller_student_runs_the_teachers_convolutions_with_a_solved_last_layer(
    teacher: onnx.ModelProto, chips: np.ndarray, small_chips: np.ndarray, photos: list[Path]
) -> None:
    """SFace on 80 px chips: only its last layer is new, and it points where SFace points."""
    targets = _targets(teacher, chips)
    assert small_chips.shape == (len(chips), 3, 80, 80)
    student = at_input_size(teacher, 80, small_chips, targets)
    dims = student.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 80, 80]
    assert [n.op_type for n in student.graph.node][-2:] == ["Flatten", "Gemm"]
    # faces it was not solved on: the same photos, other jitters
    chipper = FaceChipper(alignment=ALIGNMENTS["arcface_80"])
    teacher_chipper = FaceChipper(alignment=ARCFACE_112)
    unseen, unseen_targets = [], []
    for index, path in enumerate(p for p in photos if p.name in PHOTOS):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        unseen += chipper.chips(rgb, 4, 0.08, seed=100 + index)[2:]
        unseen_targets += teacher_chipper.chips(rgb, 4, 0.08, seed=100 + index)[2:]
    runner = OnnxruntimeModel(student.SerializeToString(), name="student")
    as_input = np.stack(unseen).transpose(0, 3, 1, 2).astype(np.float32)
    truth = _targets(teacher, np.stack(unseen_targets).transpose(0, 3, 1, 2))
    cosine = np.sum(normalized(embed(runner, as_input)) * truth, axis=1)
    mean = normalized(targets.mean(axis=0, keepdims=True))  # knowing nothing of the face
    # measured 0.83, the mean face 0.55
    assert cosine.mean() > 0.7, cosine
    assert cosine.mean() > float(np.mean(truth @ mean.T)) + 0.15
    # every convolution keeps the teacher's weights
    before = {i.name: numpy_helper.to_array(i) for i in teacher.graph.initializer}
    kept = [i for i in student.graph.initializer if i.name in before]
    assert sum(name.endswith("conv2d_weight_reshaped") for name in (i.name for i in kept)) > 20


def test_a_last_layer_that_cannot_be_solved_is_named(
    teacher: onnx.ModelProto, chips: np.ndarray, small_chips: np.ndarray
) -> None:
    graph = onnx.ModelProto()
    graph.CopyFrom(teacher)
    graph.graph.node.append(helper.make_node("Relu", ["embedding"], ["after"]))
    with pytest.raises(ToolError, match="followed by BatchNormalization, Relu"):
        at_input_size(graph, 80, small_chips, _targets(teacher, chips))


def test_a_solved_smaller_student_is_cached_by_the_chips_it_was_solved_on(
    teacher: onnx.ModelProto,
    chips: np.ndarray,
    small_chips: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMPACT_AI_CACHE", str(tmp_path))
    targets = _targets(teacher, chips)
    first = cached_smaller(teacher, 80, small_chips, targets, seed=0)
    again = cached_smaller(teacher, 80, small_chips, targets, seed=0)
    assert again.SerializeToString() == first.SerializeToString()
    assert len(list((tmp_path / "distill").glob("student-*-80px.onnx"))) == 1
    fewer = cached_smaller(teacher, 80, small_chips[:-2], targets[:-2], seed=0)
    assert len(list((tmp_path / "distill").glob("student-*-80px.onnx"))) == 2
    assert fewer.SerializeToString() != first.SerializeToString()

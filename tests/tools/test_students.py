"""Distilled students as build-pack candidates: their recipe is read, anything else refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from custom_components.compact_ai.engine.face.align import ALIGNMENTS
from tools.compact.errors import ToolError
from tools.compact.pack.embedders import SOURCES, at_size
from tools.compact.pack.reference import build_reference_pack
from tools.compact.pack.students import check_teacher, read_student
from tools.compact.train.distill_run import METADATA_KEY


@pytest.fixture(scope="module")
def teacher() -> Path:
    return build_reference_pack() / SOURCES["sface"].tier / "face_embedder.onnx"


def _student(teacher: Path, folder: Path, record: dict[str, object] | str | None) -> Path:
    model = onnx.load(teacher)
    if record is not None:
        text = record if isinstance(record, str) else json.dumps(record)
        onnx.helper.set_model_props(model, {METADATA_KEY: text})
    path = folder / "student.onnx"
    onnx.save(model, path)
    return path


def _record(teacher: Path) -> dict[str, object]:
    return {
        "source": "sface",
        "flops_target": 0.3,
        "recipe": {"epochs": 2, "seed": 0},
        "data_sha256": "0" * 64,
        "teacher_sha256": hashlib.sha256(teacher.read_bytes()).hexdigest(),
    }


def test_a_student_is_read_with_its_recipe(teacher: Path, tmp_path: Path) -> None:
    student = read_student(_student(teacher, tmp_path, _record(teacher)))
    assert (student.name, student.source, student.fraction) == (
        "embedder_sface_030d",
        SOURCES["sface"],
        0.3,
    )
    assert student.recipe == _record(teacher)
    assert student.sha256 == hashlib.sha256((tmp_path / "student.onnx").read_bytes()).hexdigest()
    check_teacher(student, teacher)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (None, "no distillation record"),
        ("{not json", "damaged"),
        ({"source": "mobilefacenet", "flops_target": 0.3}, "damaged"),
        ({"source": "sface"}, "damaged"),
        ({"source": "sface", "flops_target": 1.0, "input_size": 100}, "damaged"),
    ],
)
def test_a_file_that_is_no_student_is_refused(
    teacher: Path, tmp_path: Path, record: object, message: str
) -> None:
    path = _student(teacher, tmp_path, record)  # type: ignore[arg-type]
    with pytest.raises(ToolError, match=message):
        read_student(path)


def test_a_student_of_smaller_chips_is_the_teacher_fed_that_size(
    teacher: Path, tmp_path: Path
) -> None:
    record = _record(teacher) | {"flops_target": 1.0, "input_size": 80}
    with pytest.raises(ToolError, match=r"takes \[112, 112\] px chips, its record says 80"):
        read_student(_student(teacher, tmp_path, record))
    smaller = onnx.load(_student(teacher, tmp_path, record))
    for dim in smaller.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_value = 80
    onnx.save(smaller, tmp_path / "student.onnx")
    student = read_student(tmp_path / "student.onnx")
    assert student.source is at_size(SOURCES["sface"], 80)
    assert student.source.alignment is ALIGNMENTS["arcface_80"]
    assert student.source.config() == {"alignment": "arcface_80", "normalize": True}
    assert student.name == "embedder_sface80_100d"
    assert at_size(SOURCES["sface"], 112) is SOURCES["sface"]
    with pytest.raises(ToolError, match=r"no 100 px framing \(sizes: 56, 64, 72, 80, 96, 112\)"):
        at_size(SOURCES["sface"], 100)


def test_garbage_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x0a\xff\xff\xff\xff not a model")
    for path in (garbage, tmp_path / "missing.onnx"):
        with pytest.raises(ToolError, match="cannot be read as ONNX"):
            read_student(path)


def test_a_student_of_another_teacher_is_refused(teacher: Path, tmp_path: Path) -> None:
    record = _record(teacher) | {"teacher_sha256": "1" * 64}
    student = read_student(_student(teacher, tmp_path, record))
    with pytest.raises(ToolError, match="distilled from another sface net"):
        check_teacher(student, teacher)

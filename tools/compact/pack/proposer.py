"""``add-proposer``: put YuNet into a pack, with each tier's pixel budget, without a rebuild.

The face cascade (``engine/face/cascade.py``) needs YuNet beside BlazeFace. This adds the
shared ``shared/face_proposer.{onnx,param,bin}`` (the reference pack's fp32 import; its ncnn
files passed the export's check against onnxruntime) and, per tier, a ``face_proposer`` entry
whose config is the tier's pixel budget (:data:`TIER_DETECTION`) and whose metrics are what
was measured here on door-camera frames (``--frames``: folders ``doorcam_<W>/<person>/*.jpg``
made by ``../shared/tools/doorcam.py``): the share of frames with a face per face width W and
the median ms per frame from JPEG bytes to embeddings, per backend, 1 thread. Every other
file of the pack stays byte for byte; the far-range BlazeFace, which the cascade replaces,
leaves the tiers and the pack.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Final

from tools.compact.errors import ToolError

PROPOSER: Final = "face_proposer"
REPLACED: Final = "face_detector_full"
SHARED: Final = "shared"
HD: Final = 960 * 540
TIER_DETECTION: Final[dict[str, dict[str, Any]]] = {
    # accurate: the smallest faces; aligned from a full decode when a face is small
    "accurate": {
        "detect_pixels": HD,
        "gray_detect_pixels": HD,
        "align_pixels": HD,
        "sharpen": True,
    },
    # balanced: 640x360 for colour, picked (not filtered) from the half-scale decode: 4 ms
    # less per frame for 5 pt fewer 48 px faces (790 frames); night (grey) frames need twice
    # the pixels
    "balanced": {
        "detect_pixels": 640 * 360,
        "gray_detect_pixels": HD,
        "align_pixels": HD,
        "sharpen": False,
        "resample": "nearest",
    },
    # fast: the fewest pixels, picked (544x306: 90 % of 64 px faces found, 79 % at 480x270);
    # its night picture is filtered, as picking keeps IR noise (70 % of grey 64 px faces, 62 %)
    "fast": {
        "detect_pixels": 544 * 306,
        "gray_detect_pixels": 640 * 360,
        "align_pixels": HD,
        "sharpen": False,
        "resample": "nearest",
        "gray_resample": "bilinear",
    },
}
BACKENDS: Final = ("ncnn", "onnxruntime")
FRAMES_PER_WIDTH: Final = 100


def add_proposer(
    root: Path, reference: Path, metrics: dict[str, dict[str, Any]] | None = None
) -> None:
    """Copy YuNet from the reference pack ``reference`` into ``root`` and list it per tier."""
    from tools.compact.pack.reference import REFERENCE_TIER
    from tools.compact.pack.writer import add_model, read_manifest, write_manifest

    manifest = read_manifest(root)
    missing = set(TIER_DETECTION) - set(manifest["tiers"])
    if missing:
        raise ToolError(f"the pack at {root} has no tiers {sorted(missing)}")
    source = json.loads((reference / "manifest.json").read_text(encoding="utf-8"))
    entry = source["tiers"][REFERENCE_TIER]["models"][PROPOSER]
    folder = root / SHARED
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {}
    for backend, records in entry["files"].items():
        files[backend] = []
        for record in records:
            target = folder / Path(record["path"]).name
            shutil.copyfile(reference / record["path"], target)
            files[backend].append(target)
    io = {key: entry["config"][key] for key in ("inputs", "outputs")}
    for tier, detection in TIER_DETECTION.items():
        add_model(
            root,
            tier,
            PROPOSER,
            files,
            config={**io, "variant": "yunet", **detection},
            metrics=(metrics or {}).get(tier, {}),
        )
    _drop_replaced(root, read_manifest(root), write_manifest)


def _drop_replaced(root: Path, manifest: dict[str, Any], write: Any) -> None:
    """Remove the far-range BlazeFace from every tier, and its files once nothing lists them."""
    paths = set()
    for tier in manifest["tiers"].values():
        entry = tier["models"].pop(REPLACED, None)
        if entry:
            paths |= {f["path"] for files in entry["files"].values() for f in files}
    listed = {
        f["path"]
        for tier in manifest["tiers"].values()
        for entry in tier["models"].values()
        for files in entry["files"].values()
        for f in files
    }
    write(root, manifest)
    for path in paths - listed:
        (root / path).unlink(missing_ok=True)


def door_frames(folder: Path, per_width: int = FRAMES_PER_WIDTH) -> dict[int, list[Path]]:
    """Return the first ``per_width`` frames (sorted) of each ``doorcam_<W>`` folder."""
    found = {}
    for sub in sorted(folder.glob("doorcam_*")):
        width = sub.name.removeprefix("doorcam_")
        if width.isdigit():
            found[int(width)] = sorted(sub.glob("*/*.jpg"))[:per_width]
    if not found:
        raise ToolError(f"{folder}: no doorcam_<W> folders (make them with doorcam.py)")
    return dict(sorted(found.items()))


def measure(root: Path, tier: str, backend: str, frames: dict[int, list[Path]]) -> dict[str, Any]:
    """Share of frames with a face per width, and median ms per frame, for one tier."""
    from custom_components.compact_ai.engine.face.recognizer import load_pipeline
    from custom_components.compact_ai.engine.runtime.pack import ModelPack

    pipeline = load_pipeline(ModelPack.load(root), tier, backend, threads=1)
    found: dict[str, float] = {}
    times = []
    for width, paths in frames.items():
        hits = 0
        for path in paths:
            data = path.read_bytes()
            start = time.perf_counter()
            hits += bool(pipeline.scan(data).faces)
            times.append((time.perf_counter() - start) * 1000)
        found[str(width)] = round(hits / max(len(paths), 1), 3)
    return {"found_by_face_width": found, "ms_per_frame": round(statistics.median(times), 1)}


def measure_tiers(root: Path, frames: dict[int, list[Path]]) -> dict[str, dict[str, Any]]:
    """Measure every tier on both backends; return the metrics :func:`add_proposer` records."""
    from tools.compact.pack.build import cpu_name

    size = "x".join(map(str, _frame_size(frames)))
    metrics: dict[str, dict[str, Any]] = {}
    for tier in TIER_DETECTION:
        metrics[tier] = {
            "door_frames": f"{sum(map(len, frames.values()))} doorcam.py frames, {size}, JPEG "
            f"q85, one face of width W; 1 thread, {cpu_name()}",
        }
        for backend in BACKENDS:
            metrics[tier][f"door_{backend}"] = measure(root, tier, backend, frames)
    return metrics


def _frame_size(frames: dict[int, list[Path]]) -> tuple[int, int]:
    from PIL import Image

    with Image.open(next(iter(frames.values()))[0]) as image:
        size: tuple[int, int] = image.size
    return size

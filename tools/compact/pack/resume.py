"""Finished ``build-pack`` candidates kept in the cache, so a run that stops can resume.

A run takes hours on a small machine; each candidate's files and measurements are written
once it is finished (``packs/candidates/<key>/``), and a later run with the same photos, seed
and candidate-making code reuses them. Only the timing, the tier choice and the pack are
redone (timing needs every model in the same run). Files are written to a temporary folder
and renamed, so a half-written candidate is never read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx

from tools.compact.pack.candidates import Candidate
from tools.compact.pack.embedders import EmbedderSource, source_named
from tools.compact.paths import cache_dir

FILES = ("face_embedder.onnx", "face_embedder.param", "face_embedder.bin")
# The code a candidate's files and measurements depend on.
CODE = (
    "tools/compact/compress",
    "tools/compact/ncnn",
    "tools/compact/importers",
    "tools/compact/pack/candidates.py",
    "tools/compact/pack/heldout.py",
    "tools/compact/pack/embedders.py",
    "tools/compact/evaluate/labels.py",
    "eval/label_errors.txt",
    "custom_components/compact_ai/engine",
)


def code_fingerprint(root: Path) -> str:
    """Return the sha256 of the candidate-making code under the repository ``root``."""
    digest = hashlib.sha256()
    for part in CODE:
        path = root / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def candidate_key(
    source: EmbedderSource, fraction: float, seed: int, photos: list[Path], code: str
) -> str:
    """Return the folder name of a candidate made from these inputs."""
    inputs = [source.name, fraction, seed, code, [(p.as_posix(), p.stat().st_size) for p in photos]]
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()[:24]


def folder(key: str) -> Path:
    """Return where the candidate with ``key`` is kept."""
    return cache_dir() / "packs" / "candidates" / key


def save(key: str, candidate: Candidate) -> None:
    """Keep a finished candidate's files and measurements (atomically)."""
    target = folder(key)
    partial = target.with_name(f"{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, data in zip(
        FILES, (candidate.onnx_bytes, candidate.param, candidate.weights), strict=True
    ):
        (partial / name).write_bytes(data)
    about = {
        "name": candidate.name,
        "flops_target": candidate.flops_target,
        "source": candidate.source.name,
        "config": candidate.config,
        "metrics": candidate.metrics,
    }
    (partial / "candidate.json").write_text(json.dumps(about, sort_keys=True))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def load(key: str) -> Candidate | None:
    """Return the kept candidate with ``key``, or ``None``."""
    path = folder(key)
    if not (path / "candidate.json").exists():
        return None
    about = json.loads((path / "candidate.json").read_text())
    candidate = Candidate(
        about["name"], about["flops_target"], onnx.ModelProto(), source_named(about["source"])
    )
    candidate.onnx_bytes, candidate.param, candidate.weights = (
        (path / name).read_bytes() for name in FILES
    )
    candidate.config, candidate.metrics = about["config"], about["metrics"]
    return candidate

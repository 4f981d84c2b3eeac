"""Write model packs: copy files in, pin their sha256 and size, keep the manifest valid.

The reader is ``custom_components.compact_ai.engine.runtime.pack``; every manifest written here
is validated by it before it is saved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custom_components.compact_ai.engine.runtime.pack import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    parse_manifest,
    sha256_of,
)


def read_manifest(root: Path) -> dict[str, Any]:
    """Return the manifest of the pack at ``root``, or an empty one."""
    path = root / MANIFEST_NAME
    if not path.exists():
        return {"schema_version": SCHEMA_VERSION, "tiers": {}}
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return raw


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Validate and save a manifest (sorted keys, so builds are byte-for-byte repeatable)."""
    parse_manifest(manifest)
    root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def file_record(root: Path, path: Path) -> dict[str, Any]:
    """Return the manifest record of a file that lies inside the pack folder."""
    data = path.read_bytes()
    return {"path": path.relative_to(root).as_posix(), "sha256": sha256_of(data), "size": len(data)}


def add_model(
    root: Path,
    tier: str,
    task: str,
    files: dict[str, list[Path]],
    *,
    config: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str | None = None,
    source: dict[str, str] | None = None,
) -> None:
    """Record a model (files already written inside ``root``) under ``tier``/``task``.

    ``source`` names the model it was made from, its license and the changes (the engine
    does not read it).
    """
    manifest = read_manifest(root)
    tier_raw = manifest["tiers"].setdefault(tier, {"description": "", "models": {}})
    if description is not None:
        tier_raw["description"] = description
    tier_raw["models"][task] = {
        "files": {
            backend: [file_record(root, path) for path in paths] for backend, paths in files.items()
        },
        "config": config or {},
        "metrics": metrics or {},
        **({"source": source} if source else {}),
    }
    write_manifest(root, manifest)

"""Where the toolkit keeps downloads and generated models (outside git)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = REPO_ROOT / "custom_components" / "compact_ai" / "models"
EVALDATA_DIR = REPO_ROOT.parent / "shared" / "evaldata"


def cache_dir() -> Path:
    """Return the cache root (``$COMPACT_AI_CACHE`` or ``~/.cache/compact-ai``)."""
    root = os.environ.get("COMPACT_AI_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "compact-ai"
    path.mkdir(parents=True, exist_ok=True)
    return path

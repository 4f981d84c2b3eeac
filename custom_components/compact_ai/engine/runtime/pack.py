"""The model pack: ``manifest.json`` and the tier files it lists.

The manifest is the one contract between the offline toolkit (which writes it) and the
integration (which reads it). Layout::

    {
      "schema_version": 1,
      "tiers": {
        "<tier>": {
          "description": "...",
          "models": {
            "<task>": {
              "files": {"<backend>": [{"path": "...", "sha256": "...", "size": 123}]},
              "config": {...},      # how the engine must run it (input size, ncnn options)
              "metrics": {...}      # what the toolkit measured (ms, accuracy, fidelity)
            }
          }
        }
      }
    }

File bytes are only handed out by :meth:`ModelPack.read_verified`, after their size and
sha256 match the manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..errors import ManifestError, ModelIntegrityError

SCHEMA_VERSION: Final = 1
MANIFEST_NAME: Final = "manifest.json"
DEFAULT_PACK_DIR: Final = Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a model, as the manifest pins it."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One task's model in one tier, with a file list per backend."""

    tier: str
    task: str
    files: dict[str, tuple[ModelFile, ...]]
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Tier:
    """A named set of models (accurate, balanced, fast, or the reference)."""

    name: str
    description: str
    models: dict[str, ModelEntry]


def _require(mapping: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ManifestError(f"{where}: missing {key!r}")
    value = mapping[key]
    if not isinstance(value, kind):
        raise ManifestError(f"{where}.{key}: expected {kind.__name__}")
    return value


def _parse_file(raw: Any, where: str) -> ModelFile:
    path = _require(raw, "path", str, where)
    if Path(path).is_absolute() or ".." in Path(path).parts:
        raise ManifestError(f"{where}: path {path!r} must stay inside the pack")
    sha256 = _require(raw, "sha256", str, where)
    if len(sha256) != 64:
        raise ManifestError(f"{where}: sha256 must be 64 hex digits")
    return ModelFile(path=path, sha256=sha256.lower(), size=_require(raw, "size", int, where))


def _parse_entry(tier: str, task: str, raw: Any) -> ModelEntry:
    where = f"tiers.{tier}.models.{task}"
    files: dict[str, tuple[ModelFile, ...]] = {}
    for backend, items in _require(raw, "files", dict, where).items():
        if not isinstance(items, list) or not items:
            raise ManifestError(f"{where}.files.{backend}: expected a non-empty list")
        files[backend] = tuple(
            _parse_file(item, f"{where}.files.{backend}[{i}]") for i, item in enumerate(items)
        )
    return ModelEntry(
        tier=tier,
        task=task,
        files=files,
        config=dict(raw.get("config", {})),
        metrics=dict(raw.get("metrics", {})),
    )


def parse_manifest(raw: Any) -> dict[str, Tier]:
    """Validate a decoded manifest and return its tiers."""
    version = _require(raw, "schema_version", int, "manifest")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"manifest: schema_version {version} is not {SCHEMA_VERSION}")
    tiers: dict[str, Tier] = {}
    for name, tier in _require(raw, "tiers", dict, "manifest").items():
        models = _require(tier, "models", dict, f"tiers.{name}")
        tiers[name] = Tier(
            name=name,
            description=str(tier.get("description", "")),
            models={task: _parse_entry(name, task, entry) for task, entry in models.items()},
        )
    return tiers


def sha256_of(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def load_json(path: Path) -> Any:
    """Read a manifest file; raise :class:`ManifestError` if it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ManifestError(f"{path}: not found") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"{path}: {err}") from err


def read_verified(root: Path, file: ModelFile) -> bytes:
    """Return the bytes of ``root/file.path`` after checking its size and sha256."""
    try:
        data = (root / file.path).read_bytes()
    except FileNotFoundError as err:
        raise ModelIntegrityError(f"{file.path}: missing from the model pack") from err
    except OSError as err:
        raise ModelIntegrityError(f"{file.path}: cannot be read ({err})") from err
    if len(data) != file.size:
        raise ModelIntegrityError(
            f"{file.path}: {len(data)} bytes, the manifest says {file.size} (truncated?)"
        )
    if sha256_of(data) != file.sha256:
        raise ModelIntegrityError(f"{file.path}: sha256 does not match the manifest")
    return data


@dataclass(frozen=True, slots=True)
class ModelPack:
    """A pack folder whose manifest has been read and validated."""

    root: Path
    tiers: dict[str, Tier]
    raw: dict[str, Any]

    @classmethod
    def load(cls, root: Path = DEFAULT_PACK_DIR) -> ModelPack:
        """Read ``root/manifest.json``; raise :class:`ManifestError` if it is unusable."""
        raw = load_json(root / MANIFEST_NAME)
        return cls(root=root, tiers=parse_manifest(raw), raw=raw)

    def model(self, tier: str, task: str) -> ModelEntry:
        """Return the model of ``task`` in ``tier``."""
        try:
            return self.tiers[tier].models[task]
        except KeyError as err:
            raise ManifestError(f"the pack has no {task!r} model in tier {tier!r}") from err

    def read_verified(self, file: ModelFile) -> bytes:
        """Return a model file's bytes after checking its size and sha256."""
        return read_verified(self.root, file)

    def verify(self, tier: str) -> None:
        """Check every file of a tier; raise :class:`ModelIntegrityError` on the first bad one."""
        for entry in self.tiers[tier].models.values():
            for files in entry.files.values():
                for file in files:
                    self.read_verified(file)

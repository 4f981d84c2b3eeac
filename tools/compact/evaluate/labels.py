"""Known label errors of the evaluation photos (``eval/label_errors.txt``), left out when asked.

A photo filed under the wrong person turns a genuine match into a false accept: the door's
zero-impostor distance would be set by a labelling mistake. Each listed photo was checked by
eye; the file says what it shows.
"""

from __future__ import annotations

from pathlib import Path

from tools.compact.errors import ToolError
from tools.compact.paths import REPO_ROOT

LABEL_ERRORS = REPO_ROOT / "eval" / "label_errors.txt"


def read_label_errors(path: Path | None) -> frozenset[str]:
    """Return the ``<identity>/<file>`` names listed in ``path`` (none for ``None``)."""
    if path is None:
        return frozenset()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ToolError(f"{path}: cannot read the list of label errors: {err}") from err
    return frozenset(line.split()[0] for line in lines if line.strip() and not line.startswith("#"))


def listed(path: Path, errors: frozenset[str]) -> bool:
    """Whether the photo at ``path`` (``.../<identity>/<file>``) is a listed label error."""
    return f"{path.parent.name}/{path.name}" in errors

"""``make-pairs``: a deterministic LFW-style pairs file from a folder of identities.

Format (as LFW's ``pairsDevTrain.txt``): the first line is N, then N same-person lines
``name i j`` and N different-person lines ``name1 i name2 j``; image ``i`` of ``name`` is
``DIR/name/name_<i:04d>.jpg``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from tools.compact.errors import ToolError
from tools.compact.evaluate.labels import listed

_NUMBERED = re.compile(r"^(?P<name>.+)_(?P<index>\d{4})\.jpg$")


@dataclass(frozen=True, slots=True)
class Pair:
    """Two images (name, index) and whether they show the same person."""

    first: tuple[str, int]
    second: tuple[str, int]

    @property
    def same(self) -> bool:
        """Return whether both images are of the same person."""
        return self.first[0] == self.second[0]

    def paths(self, images: Path) -> tuple[Path, Path]:
        """Return the two image paths under ``images``."""
        return image_path(images, *self.first), image_path(images, *self.second)

    def line(self) -> str:
        """Return the pair as a line of a pairs file."""
        if self.same:
            return f"{self.first[0]}\t{self.first[1]}\t{self.second[1]}"
        return f"{self.first[0]}\t{self.first[1]}\t{self.second[0]}\t{self.second[1]}"


def image_path(images: Path, name: str, index: int) -> Path:
    """Return the LFW path of image ``index`` of ``name``."""
    return images / name / f"{name}_{index:04d}.jpg"


def _parse_line(fields: list[str]) -> Pair | None:
    """Return the pair of a line's fields (None for a blank line); ValueError if malformed."""
    if len(fields) == 3:
        return Pair((fields[0], int(fields[1])), (fields[0], int(fields[2])))
    if len(fields) == 4:
        return Pair((fields[0], int(fields[1])), (fields[2], int(fields[3])))
    if fields:
        raise ValueError("expected 3 or 4 fields")
    return None


def read_pairs(path: Path) -> list[Pair]:
    """Parse a pairs file (the header line of counts is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ToolError(f"{path}: {err}") from err
    pairs = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            pair = _parse_line(line.split())
        except ValueError as err:
            raise ToolError(f"{path}:{number}: {err}") from err
        if pair is not None:
            pairs.append(pair)
    if not pairs:
        raise ToolError(f"{path}: no pairs")
    return pairs


def _identities(images: Path, exclude: frozenset[str]) -> dict[str, list[int]]:
    """Return each identity's image indices (files named ``<name>_<NNNN>.jpg``), sorted."""
    found: dict[str, list[int]] = {}
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        for file in sorted(folder.iterdir()):
            match = _NUMBERED.match(file.name)
            if match and match["name"] == folder.name and not listed(file, exclude):
                found.setdefault(folder.name, []).append(int(match["index"]))
    return found


def make_pairs(
    images: Path, per_class: int, seed: int = 0, exclude: frozenset[str] = frozenset()
) -> list[Pair]:
    """Return up to ``per_class`` same-person then as many different-person pairs.

    Photos named in ``exclude`` (label errors, ``<identity>/<file>``) take part in none.
    """
    identities = _identities(images, exclude)
    if len(identities) < 2:
        raise ToolError(f"{images}: needs at least two identity folders of <name>_NNNN.jpg")
    rng = np.random.default_rng(seed)
    same = [
        Pair((name, i), (name, j))
        for name, indices in identities.items()
        for i, j in combinations(indices, 2)
    ]
    chosen = sorted(rng.permutation(len(same))[:per_class])
    same_pairs = [same[k] for k in chosen]
    names = sorted(identities)
    different: set[Pair] = set()
    for _ in range(per_class * 20):  # bounded: small folders may not have enough pairs
        if len(different) == len(same_pairs):
            break
        a, b = sorted(rng.choice(len(names), size=2, replace=False))
        first = (names[a], int(rng.choice(identities[names[a]])))
        different.add(Pair(first, (names[b], int(rng.choice(identities[names[b]])))))
    return same_pairs + sorted(different, key=lambda p: (p.first, p.second))


def write_pairs(path: Path, pairs: list[Pair]) -> None:
    """Write ``pairs`` (same-person first) in the LFW format."""
    count = sum(pair.same for pair in pairs)
    text = "\n".join([str(count), *(pair.line() for pair in pairs)]) + "\n"
    path.write_text(text, encoding="utf-8")

"""Progress bars for the long toolkit steps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast


def progress_bar[T](items: Sequence[T], desc: str, enabled: bool) -> Iterable[T]:
    """Wrap ``items`` in a tqdm bar if enabled, without tqdm's lingering monitor thread."""
    if not enabled:
        return items
    from tqdm import tqdm

    tqdm.monitor_interval = 0
    return cast("Iterable[T]", tqdm(items, desc=desc))

"""When each enrolled person was last recognized, for the People page of the options.

Kept apart from the people store: that one holds every face chip (megabytes) and must not be
rewritten on every recognition. This one is a few bytes per person, written at most once a
minute (and when Home Assistant stops).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN
from ..engine.face.gallery import MatchStatus
from .manager import ScanReport

STORAGE_KEY: Final = f"{DOMAIN}.last_seen"
SAVE_DELAY: Final = 60  # seconds


class LastSeen:
    """Person id -> the time a scan last matched them."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Create the store (private: who was home when)."""
        self._store: Store[dict[str, Any]] = Store(hass, 1, STORAGE_KEY, private=True)
        self._seen: dict[str, datetime] = {}

    async def async_load(self) -> None:
        """Read the stored times; anything unreadable is dropped (it is only a convenience)."""
        raw = await self._store.async_load()
        if not isinstance(raw, dict):
            return
        for person_id, value in raw.items():
            if isinstance(value, str) and (when := dt_util.parse_datetime(value)) is not None:
                self._seen[person_id] = when

    def get(self, person_id: str) -> datetime | None:
        """Return when ``person_id`` was last recognized (``None``: never)."""
        return self._seen.get(person_id)

    @callback
    def async_on_report(self, report: ScanReport) -> None:
        """Note everyone a scan recognized, at the time the snapshot was taken."""
        if report.scan is None:
            return
        people = [
            r.match.person
            for r in report.scan.recognitions
            if r.match.status is MatchStatus.MATCH and r.match.person is not None
        ]
        if people:
            now = dt_util.utcnow()
            self._seen.update(dict.fromkeys(people, now))
            self._store.async_delay_save(self._data, SAVE_DELAY)

    @callback
    def async_forget(self, person_id: str) -> None:
        """Forget a deleted person."""
        if self._seen.pop(person_id, None) is not None:
            self._store.async_delay_save(self._data, SAVE_DELAY)

    def _data(self) -> dict[str, Any]:
        return {person_id: when.isoformat() for person_id, when in self._seen.items()}

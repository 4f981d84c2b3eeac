"""Loading a private store that may be damaged: a repair issue, never a failed setup.

A store whose JSON is cut off or whose data has the wrong shape (a manual edit, a disk
error, a downgrade) is copied next to itself before anything can overwrite it, reported
under Settings -> Repairs, and the integration starts as if the store were empty. Home
Assistant itself renames a file that is not JSON at all (``.corrupt.<time>``) and raises its
own repair issue; that case also ends here as an empty store.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from ..const import DOMAIN

_LOGGER = logging.getLogger(__name__)

ISSUE_STORE_DAMAGED = "store_damaged"


class StoredDataError(ValueError):
    """Stored data does not have the shape this version writes."""


def expect[T](value: Any, kind: type[T], what: str) -> T:
    """Return ``value`` if it is a ``kind``; raise :class:`StoredDataError` naming ``what``."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise StoredDataError(f"{what} is {type(value).__name__}, not {kind.__name__}")
    return value


def _keep_copy(path: str) -> str | None:
    """Copy the damaged file aside (it is about to be overwritten); return the copy's path."""
    source = Path(path)
    stamp = dt_util.utcnow().strftime("%Y%m%dT%H%M%S")
    target = source.with_name(f"{source.name}.damaged.{stamp}")
    try:
        shutil.copy2(source, target)
    except OSError as err:  # gone (Home Assistant renamed it) or unreadable
        _LOGGER.debug("No copy of %s kept: %s", source, err)
        return None
    return str(target)


async def async_load_checked[T](
    hass: HomeAssistant, store: Store[dict[str, Any]], parse: Callable[[dict[str, Any]], T]
) -> T:
    """Load ``store`` and ``parse`` it (``{}`` when there is none); damage gives ``parse({})``."""
    issue_id = f"{ISSUE_STORE_DAMAGED}_{store.key}"
    try:
        raw = await store.async_load()
        result = parse(expect(raw, dict, "the stored data") if raw is not None else {})
    except (HomeAssistantError, KeyError, TypeError, ValueError, AttributeError) as err:
        backup = await hass.async_add_executor_job(_keep_copy, store.path)
        _LOGGER.error(
            "The stored data %s is damaged and was not used (a copy is kept at %s): %s",
            store.key, backup, err,
        )  # fmt: skip
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=True,  # shown until dismissed, even after the next good save
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_STORE_DAMAGED,
            translation_placeholders={
                "key": store.key,
                "backup": backup or "-",
                "error": str(err)[:200],
            },
        )
        return parse({})
    return result

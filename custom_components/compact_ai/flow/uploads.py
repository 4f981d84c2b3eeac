"""Photos uploaded in the options flow (Home Assistant's file_upload), read with bounds.

The browser uploads a photo when it is picked and the form sends its id; the file waits in a
temporary folder until it is read here (then it is deleted) or Home Assistant stops. A file
larger than an image may be is refused before its bytes are read.
"""

from __future__ import annotations

import os
from typing import Any

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import FileSelector, FileSelectorConfig

from ..errors import UserError
from ..face.manager import MAX_IMAGE_BYTES

ACCEPT = "image/*"


class PhotoSelector(FileSelector):
    """The file selector (one photo in the browser) that also takes a list of file ids.

    The browser always sends one id; a list from an API client is passed on, so that too
    many files become a form error instead of a schema error.
    """

    def __init__(self) -> None:
        """Accept images only (the browser filters the file picker by this)."""
        super().__init__(FileSelectorConfig(accept=ACCEPT))

    def __call__(self, data: Any) -> Any:
        """Return one file id, or a list of them."""
        if isinstance(data, list):
            for item in data:
                super().__call__(item)
            return [str(item) for item in data]
        return super().__call__(data)


def file_ids(value: Any) -> list[str]:
    """Return the file ids a form field held (none, one or a list)."""
    if not value:
        return []
    return list(value) if isinstance(value, list) else [value]


def _read_one(hass: HomeAssistant, file_id: str, max_bytes: int) -> tuple[str, bytes]:
    """Return the name and bytes of one upload; a file over ``max_bytes`` is not read."""
    try:
        with process_uploaded_file(hass, file_id) as path, path.open("rb") as handle:
            name = path.name
            too_large = os.fstat(handle.fileno()).st_size > max_bytes
            data = b"" if too_large else handle.read(max_bytes + 1)
    except (ValueError, OSError) as err:  # ValueError: no such upload (any more)
        raise UserError("photo_missing") from err
    if too_large or len(data) > max_bytes:  # (or it grew while it was read)
        raise UserError("photo_too_large", photo=name, limit=f"{max_bytes >> 20}")
    return name, data


def _discard(hass: HomeAssistant, file_id: str) -> None:
    try:
        with process_uploaded_file(hass, file_id):
            pass  # leaving the block deletes the file unread
    except (ValueError, OSError):
        pass


def read_uploads(
    hass: HomeAssistant, ids: list[str], max_bytes: int = MAX_IMAGE_BYTES
) -> list[tuple[str, bytes]]:
    """Return (file name, bytes) of every upload; each is deleted once read (executor job).

    Raises UserError; every upload of the request is deleted either way.
    """
    try:
        return [_read_one(hass, file_id, max_bytes) for file_id in ids]
    finally:
        discard_uploads(hass, ids)


def discard_uploads(hass: HomeAssistant, ids: list[str]) -> None:
    """Delete uploads unread (a request refused before its photos are looked at)."""
    for file_id in ids:
        _discard(hass, file_id)

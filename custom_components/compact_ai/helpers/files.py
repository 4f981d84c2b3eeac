"""Reading files a service call names: allowed folders only, regular files only, bounded.

Everything here blocks and runs in an executor job, the check and the read in the same job.
The path is resolved (symlinks followed) and the resolved path is checked against
``allowlist_external_dirs``; it is then opened with ``O_NOFOLLOW`` so a link swapped in
after the check is refused, and ``O_NONBLOCK`` so a FIFO cannot hang the thread. Only what
the open descriptor points at is checked and read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from homeassistant.core_config import Config

from ..errors import UserError


def open_allowed(config: Config, path: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file in an allowed folder.

    Raises :class:`UserError` (``path_not_allowed``, ``not_a_file``, ``file_unreadable``).
    """
    try:  # first the folder: whether a file exists elsewhere is nobody's business
        resolved = Path(path).resolve()
        allowed = config.is_allowed_path(str(resolved))
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the path
        allowed = False
    if not allowed:
        raise UserError("path_not_allowed", path=path)
    try:
        descriptor = os.open(resolved, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise UserError("file_unreadable", path=path) from err
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserError("not_a_file", path=path)
    return os.fdopen(descriptor, "rb")


def read_allowed(config: Config, path: str, max_bytes: int) -> bytes:
    """Return the bytes of the allowed regular file ``path``; larger than ``max_bytes`` raises."""
    with open_allowed(config, path) as handle:
        if os.fstat(handle.fileno()).st_size > max_bytes:
            raise UserError("file_too_large", path=path, limit=f"{max_bytes >> 20} MB")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as err:
            raise UserError("file_unreadable", path=path) from err
    if len(data) > max_bytes:  # it grew after the check
        raise UserError("file_too_large", path=path, limit=f"{max_bytes >> 20} MB")
    return data


def read_all_allowed(config: Config, paths: list[str], max_bytes: int) -> list[tuple[str, bytes]]:
    """Return ``(path, bytes)`` of every file; the first one that fails raises."""
    return [(path, read_allowed(config, path, max_bytes)) for path in paths]

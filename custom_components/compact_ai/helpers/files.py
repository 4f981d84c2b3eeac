"""Reading files a service call names: allowed folders only, regular files only, bounded.

Everything here blocks and runs in an executor job, the check and the read in the same job.
The path is resolved (symlinks followed) and the resolved path is checked against
``allowlist_external_dirs``. It is then opened one component at a time from ``/``, each
with ``O_NOFOLLOW`` relative to the directory opened before it: the resolved path holds no
symlink, so a symlink found on the way (a parent folder swapped for a link after the check)
is refused instead of followed. ``O_NONBLOCK`` keeps a FIFO from hanging the thread. Only
what the open descriptor points at is checked and read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from homeassistant.core_config import Config

from ..errors import UserError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def _open_without_links(resolved: Path) -> int:
    """Open the absolute, resolved ``resolved`` without following any symlink on the way."""
    parts = resolved.parts[1:]
    directory = os.open("/", _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            inner = os.open(part, _DIR_FLAGS, dir_fd=directory)
            os.close(directory)
            directory = inner
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
    finally:
        os.close(directory)


def open_allowed(config: Config, path: str) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file in an allowed folder.

    Raises :class:`UserError` (``path_not_allowed``, ``not_a_file``, ``file_unreadable``).
    """
    try:  # first the folder: whether a file exists elsewhere is nobody's business
        resolved = Path(path).resolve()
        allowed = resolved.name != "" and config.is_allowed_path(str(resolved))
    except (OSError, RuntimeError, ValueError):  # ValueError: a NUL in the path
        allowed = False
    if not allowed:
        raise UserError("path_not_allowed", path=path)
    try:
        descriptor = _open_without_links(resolved)
    except OSError as err:  # ELOOP/ENOTDIR: a link appeared on the way; or gone, or denied
        raise UserError("file_unreadable", path=path) from err
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UserError("not_a_file", path=path)
    return os.fdopen(descriptor, "rb")


def read_allowed(config: Config, path: str, max_bytes: int) -> bytes:
    """Return the bytes of the allowed regular file ``path``; larger than ``max_bytes`` raises."""
    with open_allowed(config, path) as handle:
        _check_size(handle, path, max_bytes)
        try:
            data = handle.read(max_bytes + 1)
        except OSError as err:
            raise UserError("file_unreadable", path=path) from err
    if len(data) > max_bytes:  # it grew after the check
        raise UserError("file_too_large", path=path, limit=f"{max_bytes >> 20} MB")
    return data


def check_all_allowed(config: Config, paths: list[str], max_bytes: int) -> None:
    """Check every file as :func:`read_allowed` would, reading none (the first failure raises).

    Lets a call with a bad path fail before any other file is decoded; each file is still
    checked again when it is read.
    """
    for path in paths:
        with open_allowed(config, path) as handle:
            _check_size(handle, path, max_bytes)


def _check_size(handle: BinaryIO, path: str, max_bytes: int) -> None:
    if os.fstat(handle.fileno()).st_size > max_bytes:
        raise UserError("file_too_large", path=path, limit=f"{max_bytes >> 20} MB")

"""Start Home Assistant like `hass`, for scripts/develop.

Two differences from .venv/bin/hass:
- Home Assistant 2026.2.3 refuses to start on Python older than 3.13.2, but the Python 3.13 that
  scripts/setup finds may be 3.13.0 (pyenv's on these machines). The venv, the tests and the
  integration run on it, so only that start-up check is waived, with a warning.
- It runs in its own process group, so that scripts/develop decides how it is stopped: one
  SIGTERM (graceful), whether the developer pressed Ctrl-C or a script stopped scripts/develop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

import homeassistant.__main__ as ha_main
from homeassistant.const import REQUIRED_PYTHON_VER

os.setpgid(0, 0)
# ... and when scripts/develop itself dies without stopping it (SIGKILL, a closed pipe), Linux
# sends it the SIGTERM: no orphaned Home Assistant keeps the port.
with contextlib.suppress(AttributeError, OSError):  # not Linux: no such call
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG

if sys.version_info[:3] < REQUIRED_PYTHON_VER:
    wanted = ".".join(map(str, REQUIRED_PYTHON_VER))
    print(
        f"scripts/develop: Python {sys.version.split()[0]} is older than the {wanted} that "
        "Home Assistant asks for; starting it anyway (dev instance only)",
        file=sys.stderr,
        flush=True,
    )
    ha_main.validate_python = lambda: None

sys.exit(ha_main.main())

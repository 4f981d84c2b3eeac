"""``enroll-memory``: the peak memory of one ``enroll_face`` call with many large files.

A real Home Assistant (``soak_home``) with Compact AI; one call enrolls ``--files`` photos of
``--mb`` MB each (a real photo followed by padding, which JPEG decoders ignore, so each file
costs its full size to read and little to decode). Printed: RSS before the call, the peak
during it (``VmHWM`` after resetting it through ``/proc/self/clear_refs``) and the growth.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tools.compact.errors import ToolError
from tools.compact.evaluate.soak_probes import rss_mb


def _status_mb(field: str) -> float:
    fd = os.open("/proc/self/status", os.O_RDONLY)
    try:
        text = os.read(fd, 8192).decode()
    finally:
        os.close(fd)
    line = next(line for line in text.splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) * 1024 / 1e6


def _reset_peak() -> None:
    """Make ``VmHWM`` start again from the current RSS (Linux ``clear_refs`` value 5)."""
    try:
        fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
    except OSError as err:
        raise ToolError(f"cannot reset the peak RSS: {err}") from err
    try:
        os.write(fd, b"5")
    finally:
        os.close(fd)


def write_files(folder: Path, count: int, megabytes: float) -> list[Path]:
    """Write ``count`` copies of a real photo, each padded to ``megabytes`` MB."""
    from PIL import Image

    from tools.compact.pack.sources import source_path

    folder.mkdir(parents=True, exist_ok=True)
    photo = io.BytesIO()
    Image.open(source_path("astronaut.png")).convert("RGB").save(photo, "JPEG", quality=95)
    padding = b"\0" * max(0, int(megabytes * 1e6) - photo.tell())
    paths = []
    for index in range(count):
        path = folder / f"large_{index}.jpg"
        path.write_bytes(photo.getvalue() + padding)
        paths.append(path)
    return paths


async def measure(count: int, megabytes: float) -> dict[str, Any]:
    """Set up Home Assistant, enroll ``count`` large files in one call, return the numbers."""
    from custom_components.compact_ai.const import CONF_TIER, DOMAIN
    from tools.compact.evaluate import soak_home

    loop = asyncio.get_running_loop()
    folder = Path(await loop.run_in_executor(None, tempfile.mkdtemp, "", "compact-enroll-"))
    try:
        paths = await loop.run_in_executor(None, write_files, folder / "photos", count, megabytes)
        hass = await soak_home.start_home(folder)
        try:
            hass.config.allowlist_external_dirs = {str(paths[0].parent)}
            await soak_home.add_entry(hass, DOMAIN, "Compact AI", {CONF_TIER: "balanced"})
            first = {"name": "Warm-up", "files": [str(paths[0])]}  # lazy imports, arenas
            await hass.services.async_call(DOMAIN, "enroll_face", first, blocking=True)
            await hass.services.async_call(DOMAIN, "delete_person", {"name": "Warm-up"}, True)
            gc.collect()
            before = rss_mb()
            _reset_peak()
            response = await hass.services.async_call(
                DOMAIN,
                "enroll_face",
                {"name": "Eileen", "files": [str(path) for path in paths]},
                blocking=True,
                return_response=True,
            )
            peak = _status_mb("VmHWM")
        finally:
            await soak_home.stop_home(hass)
    finally:
        await loop.run_in_executor(None, shutil.rmtree, folder)
    assert response is not None
    return {
        "files": count,
        "file_mb": megabytes,
        "enrolled": response["enrolled"],
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "peak_growth_mb": round(peak - before, 1),
    }


def run_measure(files: int, megabytes: float) -> dict[str, Any]:
    """Measure one call on a loop made as Home Assistant makes its own."""
    if not 1 <= files <= 10 or not 0 < megabytes <= 25:
        raise ToolError("--files 1..10 and --mb up to 25 (the limits of enroll_face)")
    from tools.compact.evaluate.soak_home import new_loop

    loop = new_loop()
    try:
        result = loop.run_until_complete(measure(files, megabytes))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    return result

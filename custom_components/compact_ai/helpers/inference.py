"""One limit on inference jobs for the whole integration.

Scans, enrollment, voice recognition and wake word detection each run in an executor job;
without a limit, many cameras, service calls and satellites at once fill Home Assistant's
executor and each model's working memory is held that many times over. Jobs wait for a free
slot here instead (first come, first served).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN

MAX_INFERENCE_JOBS: Final = 2  # models run on one thread each; a Pi 4 has four cores
_SLOTS: HassKey[asyncio.Semaphore] = HassKey(f"{DOMAIN}_inference_slots")


async def async_infer[T, *Ts](hass: HomeAssistant, job: Callable[[*Ts], T], *args: *Ts) -> T:
    """Run ``job(*args)`` in the executor once fewer than MAX_INFERENCE_JOBS others run."""
    slots = hass.data.get(_SLOTS)
    if slots is None:
        slots = hass.data[_SLOTS] = asyncio.Semaphore(MAX_INFERENCE_JOBS)
    async with slots:
        return await hass.async_add_executor_job(job, *args)

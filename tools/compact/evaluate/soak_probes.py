"""What the soak measures: RSS, the event loop's lag (and why it was late), logged errors.

A timer on the loop every ``LAG_TICK_S`` fires late when the loop was busy, or when the
loop's thread could not run: the machine's other processes took the CPU, or another thread
held the GIL. Two numbers tell these apart: the CPU time the loop's own thread spent between
two ticks (``busy``, an upper bound on any single blocking callback), and the lag of the same
timer on an idle loop in a separate process at the same niceness (``control``: what the
machine alone does to a loop). Run ``python -m tools.compact.evaluate.soak_probes SECONDS``
for the control; it prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

LAG_TICK_S = 0.05


def rss_mb() -> float:
    """Resident memory of this process in MB (os.read: no blocking-call warning in the loop)."""
    fd = os.open("/proc/self/statm", os.O_RDONLY)
    try:
        pages = int(os.read(fd, 200).split()[1])
    finally:
        os.close(fd)
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


class LogCounter(logging.Handler):
    """Counts warnings, errors and exceptions logged anywhere; keeps the first few texts."""

    def __init__(self) -> None:
        """Count from WARNING up."""
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record (an error, or anything with a traceback, is an exception)."""
        kind = "exceptions" if record.exc_info or record.levelno >= logging.ERROR else "warnings"
        self.counts[kind] += 1
        if "Detected blocking call" in record.getMessage():
            self.counts["blocking_calls"] += 1
        if kind == "exceptions" and len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()[:300]}")


@dataclass(slots=True)
class LoopLag:
    """A timer on the loop every ``LAG_TICK_S``: how late it fired, and the loop's CPU meanwhile."""

    loop: asyncio.AbstractEventLoop
    worst_s: float = 0.0
    over_100ms: int = 0
    ticks: int = 0
    busy_worst_s: float = 0.0  # most CPU the loop's thread used between two ticks
    _cpu: float = 0.0
    _handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start ticking (call on the loop's thread)."""
        self._cpu = time.thread_time()
        self._schedule(self.loop.time() + LAG_TICK_S)

    def _schedule(self, due: float) -> None:
        self._handle = self.loop.call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        lag = self.loop.time() - due
        cpu = time.thread_time()
        self.busy_worst_s = max(self.busy_worst_s, cpu - self._cpu)
        self._cpu = cpu
        self.ticks += 1
        self.worst_s = max(self.worst_s, lag)
        self.over_100ms += lag > 0.1
        self._schedule(self.loop.time() + LAG_TICK_S)

    def stop(self) -> None:
        """Stop ticking (no timer is left on the loop)."""
        if self._handle is not None:
            self._handle.cancel()

    def as_dict(self) -> dict[str, Any]:
        """Return the worst lag and worst busy time in ms, and the ticks over 100 ms."""
        return {
            "worst_ms": round(self.worst_s * 1000, 1),
            "over_100ms": self.over_100ms,
            "ticks": self.ticks,
            "busy_worst_ms": round(self.busy_worst_s * 1000, 1),
        }


async def control(seconds: float) -> dict[str, Any]:
    """Measure the lag of an idle loop in a separate process (same niceness) for ``seconds``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools.compact.evaluate.soak_probes",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        return {"error": f"control process exited with {process.returncode}"}
    result: dict[str, Any] = json.loads(out)
    return result


async def _idle(seconds: float) -> dict[str, Any]:
    lag = LoopLag(asyncio.get_running_loop())
    lag.start()
    await asyncio.sleep(seconds)
    lag.stop()
    return lag.as_dict()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_idle(float(sys.argv[1])))))

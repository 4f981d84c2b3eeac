"""What the soak measures: RSS, the event loop's lag (and why it was late), logged errors.

A timer on the loop every ``LAG_TICK_S`` fires late when the loop was busy, or when the
loop's thread could not run: the machine's other processes took the CPU, or another thread
held the GIL. These tell the causes apart: the CPU time the loop's own thread spent between
two ticks, garbage collection aside (``busy``, an upper bound on any single blocking
callback); the garbage collector's pauses per generation (a full collection walks every
object Home Assistant holds); where the loop's thread was in each stall over 100 ms; and the
lag of the same timer on an idle loop in a separate process at the same niceness
(``control``: what the machine alone does to a loop). ``python -m
tools.compact.evaluate.soak_probes SECONDS`` runs the control and prints one JSON object.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
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


class GcPauses:
    """How long Python's garbage collector stopped the process, per generation."""

    def __init__(self) -> None:
        """Measure from :meth:`start` to :meth:`stop` (create it on the loop's thread)."""
        self.worst_ms = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self.on_loop_s = 0.0  # collections that ran on the loop's thread, in total
        self._loop_thread = threading.get_ident()
        self._began = 0.0

    def start(self) -> None:
        """Start measuring the collector's pauses."""
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        """Unhook."""
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        generation = info["generation"]
        self.runs[generation] += 1
        pause = time.perf_counter() - self._began
        self.worst_ms[generation] = max(self.worst_ms[generation], pause * 1000)
        if threading.get_ident() == self._loop_thread:
            self.on_loop_s += pause

    def as_dict(self) -> dict[str, Any]:
        """Return the worst pause (ms) and the number of collections of each generation."""
        return {
            "worst_ms": [round(ms, 1) for ms in self.worst_ms],
            "runs": self.runs,
            "objects": len(gc.get_objects()),
        }


@dataclass(slots=True)
class LoopLag:
    """A timer on the loop every ``LAG_TICK_S``: how late it fired, and the loop's CPU meanwhile."""

    loop: asyncio.AbstractEventLoop
    collector: GcPauses | None = None  # its pauses on the loop's thread are told apart
    worst_s: float = 0.0
    over_100ms: int = 0
    ticks: int = 0
    busy_worst_s: float = 0.0  # most CPU the loop's thread used between two ticks, GC aside
    last_tick: float = 0.0  # time.monotonic() of the last tick (read by Stalls' thread)
    _cpu: float = 0.0
    _handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start ticking (call on the loop's thread)."""
        self._cpu = time.thread_time() - (self.collector.on_loop_s if self.collector else 0.0)
        self.last_tick = time.monotonic()
        self._schedule(self.loop.time() + LAG_TICK_S)

    def _schedule(self, due: float) -> None:
        self._handle = self.loop.call_at(due, self._tick, due)

    def _tick(self, due: float) -> None:
        lag = self.loop.time() - due
        cpu = time.thread_time() - (self.collector.on_loop_s if self.collector else 0.0)
        self.busy_worst_s = max(self.busy_worst_s, cpu - self._cpu)
        self._cpu = cpu
        self.last_tick = time.monotonic()
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


class Stalls:
    """Where the loop's thread was while the loop was stalled: a watchdog thread looks.

    Every ``LAG_TICK_S / 2`` it checks the lag timer; once per stall longer than 100 ms it
    takes the loop thread's innermost frames. A stall spent waiting for the CPU or the GIL
    shows wherever the thread happened to be; one spent computing shows the culprit.
    """

    def __init__(self, lag: LoopLag) -> None:
        """Watch ``lag`` (start it from the loop's thread)."""
        self._lag = lag
        self._thread_id = threading.get_ident()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="soak stalls", daemon=True)
        self.places: Counter[str] = Counter()

    def start(self) -> None:
        """Start watching."""
        self._watcher.start()

    def stop(self) -> None:
        """Stop watching and wait for the thread."""
        self._stop.set()
        self._watcher.join()

    def _watch(self) -> None:
        seen = -1
        while not self._stop.wait(LAG_TICK_S / 2):
            ticks, last = self._lag.ticks, self._lag.last_tick
            if ticks != seen and time.monotonic() - last > LAG_TICK_S + 0.1:
                seen = ticks
                frame = sys._current_frames().get(self._thread_id)  # noqa: SLF001 (no public way)
                if frame is not None:
                    self.places[_place(frame)] += 1

    def top(self, count: int = 5) -> list[str]:
        """Return the most frequent places, with how many stalls found the thread there."""
        return [f"{n}x {place}" for place, n in self.places.most_common(count)]


def _place(frame: FrameType) -> str:
    """Return the three innermost frames as ``file:line function``, innermost first."""
    parts = []
    for summary in traceback.extract_stack(frame, limit=3)[::-1]:
        parts.append(f"{Path(summary.filename).name}:{summary.lineno} {summary.name}")
    return " < ".join(parts)


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

"""``soak``: a real Home Assistant scanning two cameras with the door on, for minutes or hours.

Each camera shows, in turn, the enrolled person, her head turned, a stranger and no face
(``soak_home``); every tick the driver points the camera at the next photo and calls the
``compact_ai.scan`` service, so every scan goes through snapshot, inference, the face events
and the door's decision. Measured: RSS (after a warm-up, at the end, its growth and slope),
the worst lag of a 50 ms timer on Home Assistant's loop, scans done, the door's decisions
by reason (folded denials counted one by one), and every error or exception logged.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.compact.errors import ToolError
from tools.compact.evaluate.soak_probes import (
    GcPauses,
    LogCounter,
    LoopLag,
    Stalls,
    control,
    rss_mb,
)

RSS_EVERY_S = 5.0
GOALS = {"rss_growth_mb": 10.0, "loop_lag_worst_ms": 100.0, "exceptions": 0}


@dataclass(slots=True)
class Tally:
    """What the driver saw: scans, faces, door decisions, failed calls."""

    scans: int = 0
    scan_errors: int = 0
    ticks_missed: int = 0
    faces: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    failed_calls: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SoakResult:
    """The numbers the table and ``--json`` show."""

    minutes: float
    cameras: int
    fps: float
    liveness: bool
    warmup_s: float
    rss_setup_mb: float
    rss_start_mb: float
    rss_end_mb: float
    rss_growth_mb: float
    rss_peak_mb: float
    rss_slope_mb_per_h: float
    loop_lag_worst_ms: float
    loop_lags_over_100ms: int
    loop_busy_worst_ms: float  # most CPU the loop's thread used between two ticks, GC aside
    control_lag_worst_ms: float  # an idle loop in another process at the same niceness
    control_lags_over_100ms: int
    stall_places: list[str]  # where the loop's thread was in stalls over 100 ms, most frequent
    gc: dict[str, Any]  # worst pause and runs per generation, tracked objects at the end
    scans: int
    scan_errors: int
    ticks_missed: int
    faces: dict[str, int]
    decisions: dict[str, int]
    exceptions: int
    warnings: int
    blocking_calls: int
    first_exceptions: list[str]

    def goals_met(self) -> bool:
        """Whether the run met the issue's goals (meaningful for a long run)."""
        return (
            self.rss_growth_mb < GOALS["rss_growth_mb"]
            and self.loop_lag_worst_ms < GOALS["loop_lag_worst_ms"]
            and self.exceptions == 0
        )


def _slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per hour."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 3600 if var else 0.0


async def _drive_camera(
    hass: Any, camera: str, photos: list[Path], offset: int, fps: float, end: float, tally: Tally
) -> None:
    """Show the next photo and scan, ``fps`` times a second until ``end`` (loop time)."""
    from custom_components.compact_ai.const import DOMAIN

    loop = asyncio.get_running_loop()
    period, start, tick = 1.0 / fps, loop.time(), 0
    while loop.time() < end:
        photo = photos[(tick + offset) % len(photos)]
        try:
            await hass.services.async_call(
                "local_file",
                "update_file_path",
                {"entity_id": camera, "file_path": str(photo)},
                blocking=True,
            )
            response = await hass.services.async_call(
                DOMAIN, "scan", {"entity_id": camera}, blocking=True, return_response=True
            )
        except Exception as err:  # noqa: BLE001  # a soak counts failures instead of stopping
            tally.failed_calls.append(repr(err)[:300])
        else:
            report = response["cameras"][camera]
            tally.scans += 1
            tally.scan_errors += report["error"] is not None
            for face in report["faces"]:
                tally.faces[face["status"]] += 1
            if not report["faces"]:
                tally.faces["no_face"] += 1
        tick += 1
        late = loop.time() - (start + tick * period)
        if late > 0:  # a scan took longer than a tick: skip the ticks it overran
            skipped = int(late // period) + 1
            tally.ticks_missed += skipped
            tick += skipped
        await asyncio.sleep(max(0.0, start + tick * period - loop.time()))


async def soak(
    minutes: float, cameras: int, fps: float, warmup_s: float, liveness: bool = False
) -> SoakResult:
    """Run the soak on the running loop (which must be Home Assistant's, see ``new_loop``)."""
    from homeassistant.core import Event, EventStateChangedData, callback
    from homeassistant.helpers.event import async_track_state_change_event

    from tools.compact.evaluate import soak_home

    logs = LogCounter()
    logging.getLogger().addHandler(logs)
    logging.getLogger().setLevel(logging.WARNING)
    tally = Tally()
    loop = asyncio.get_running_loop()
    config_dir = Path(await loop.run_in_executor(None, tempfile.mkdtemp, "", "compact-soak-"))
    try:
        photos = await loop.run_in_executor(None, soak_home.write_photos, config_dir / "photos")
        hass = await soak_home.start_home(config_dir)
        try:
            await soak_home.add_lock(hass)
            ids = await soak_home.add_cameras(hass, photos, cameras)
            door = await soak_home.add_door(hass, ids, photos[0], liveness)

            @callback
            def on_decision(event: Event[EventStateChangedData]) -> None:
                state = event.data["new_state"]
                if state is None or "event_type" not in state.attributes:
                    return
                attrs = state.attributes
                granted = attrs["event_type"] == "unlock_granted"
                key = "granted" if granted else f"denied: {attrs.get('reason')}"
                tally.decisions[key] += max(1, int(attrs.get("folded") or 0))
                if granted:  # lock again, as the door closing behind her would
                    hass.async_create_task(
                        hass.services.async_call(
                            "lock", "lock", {"entity_id": soak_home.LOCK}, blocking=True
                        )
                    )

            remove = async_track_state_change_event(hass, [door.event_entity], on_decision)
            collector = GcPauses()
            collector.start()
            lag = LoopLag(loop, collector)
            lag.start()
            stalls = Stalls(lag)
            stalls.start()
            rss_setup = rss_mb()
            began = loop.time()
            end = began + minutes * 60
            drivers = [
                asyncio.create_task(_drive_camera(hass, camera, photos, 2 * index, fps, end, tally))
                for index, camera in enumerate(ids)
            ]
            idle_loop = asyncio.create_task(control(minutes * 60))
            samples: list[tuple[float, float]] = []
            await asyncio.sleep(min(warmup_s, minutes * 60))
            while loop.time() < end:
                samples.append((loop.time() - began, rss_mb()))
                await asyncio.sleep(min(RSS_EVERY_S, max(0.0, end - loop.time())))
            await asyncio.gather(*drivers)
            idle = await idle_loop
            await hass.async_block_till_done()
            samples.append((loop.time() - began, rss_mb()))
            lag.stop()
            await loop.run_in_executor(None, stalls.stop)
            collector.stop()
            gc_pauses = collector.as_dict()
            remove()
        finally:
            await soak_home.stop_home(hass)
    finally:
        await loop.run_in_executor(None, shutil.rmtree, config_dir)
    logging.getLogger().removeHandler(logs)
    rss = [m for _, m in samples]
    exceptions = logs.counts["exceptions"] + len(tally.failed_calls)
    return SoakResult(
        minutes=minutes,
        cameras=cameras,
        fps=fps,
        liveness=liveness,
        warmup_s=min(warmup_s, minutes * 60),
        rss_setup_mb=round(rss_setup, 1),
        rss_start_mb=round(rss[0], 1),
        rss_end_mb=round(rss[-1], 1),
        rss_growth_mb=round(rss[-1] - rss[0], 1),
        rss_peak_mb=round(max(rss), 1),
        rss_slope_mb_per_h=round(_slope_per_hour(samples), 2),
        loop_lag_worst_ms=round(lag.worst_s * 1000, 1),
        loop_lags_over_100ms=lag.over_100ms,
        loop_busy_worst_ms=round(lag.busy_worst_s * 1000, 1),
        control_lag_worst_ms=float(idle.get("worst_ms", -1.0)),
        control_lags_over_100ms=int(idle.get("over_100ms", -1)),
        stall_places=stalls.top(),
        gc=gc_pauses,
        scans=tally.scans,
        scan_errors=tally.scan_errors,
        ticks_missed=tally.ticks_missed,
        faces=dict(sorted(tally.faces.items())),
        decisions=dict(sorted(tally.decisions.items())),
        exceptions=exceptions,
        warnings=logs.counts["warnings"],
        blocking_calls=logs.counts["blocking_calls"],
        first_exceptions=(tally.failed_calls + logs.first)[:5],
    )


def print_table(result: SoakResult) -> None:
    """Print the result as a table of labels and values, goals last."""
    rows: list[tuple[str, str]] = [
        (
            "run",
            f"{result.minutes:g} min, {result.cameras} cameras at {result.fps:g} fps, "
            f"liveness {'on' if result.liveness else 'off'}",
        ),
        ("RSS after setup", f"{result.rss_setup_mb:.1f} MB"),
        (f"RSS at start (after {result.warmup_s:g} s)", f"{result.rss_start_mb:.1f} MB"),
        ("RSS at end", f"{result.rss_end_mb:.1f} MB"),
        ("RSS growth", f"{result.rss_growth_mb:+.1f} MB (goal < {GOALS['rss_growth_mb']:g})"),
        (
            "RSS peak / slope",
            f"{result.rss_peak_mb:.1f} MB / {result.rss_slope_mb_per_h:+.2f} MB/h",
        ),
        (
            "loop lag worst",
            f"{result.loop_lag_worst_ms:.1f} ms (goal < {GOALS['loop_lag_worst_ms']:g}); "
            f"{result.loop_lags_over_100ms} ticks over 100 ms",
        ),
        (
            "loop thread CPU between ticks",
            f"{result.loop_busy_worst_ms:.1f} ms at most (garbage collection aside)",
        ),
        (
            "garbage collector",
            "worst pause (ms) by generation "
            + " / ".join(f"{ms:g}" for ms in result.gc["worst_ms"])
            + f"; runs {' / '.join(map(str, result.gc['runs']))}; "
            f"{result.gc['objects']:,} objects tracked",
        ),
        (
            "idle loop, other process",
            f"{result.control_lag_worst_ms:.1f} ms worst lag; "
            f"{result.control_lags_over_100ms} ticks over 100 ms (the machine's own share)",
        ),
        (
            "scans",
            f"{result.scans} ({result.scan_errors} with errors, "
            f"{result.ticks_missed} ticks missed)",
        ),
        ("faces", ", ".join(f"{k} {v}" for k, v in result.faces.items()) or "none"),
        ("exceptions", f"{result.exceptions} (goal 0)"),
        ("warnings / blocking calls", f"{result.warnings} / {result.blocking_calls}"),
    ]
    rows += [(f"decision {key}", str(count)) for key, count in result.decisions.items()]
    rows += [("  stalled at", place) for place in result.stall_places]
    rows += [("  exception", text) for text in result.first_exceptions]
    rows.append(("goals met", "yes" if result.goals_met() else "no"))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def run_soak(
    minutes: float, cameras: int, fps: float, warmup: float, liveness: bool
) -> tuple[SoakResult, float]:
    """Soak on a loop made as Home Assistant makes its own; return the result and wall seconds."""
    if minutes <= 0 or fps <= 0 or not 1 <= cameras <= 8:
        raise ToolError("--minutes and --fps must be positive, --cameras 1..8")
    from tools.compact.evaluate.soak_home import new_loop

    loop = new_loop()
    started = time.monotonic()
    try:
        result = loop.run_until_complete(soak(minutes, cameras, fps, warmup, liveness))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    return result, round(time.monotonic() - started, 1)

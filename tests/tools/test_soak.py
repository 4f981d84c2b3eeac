"""``soak`` and ``enroll-memory``: short runs of the benchmarks on a real Home Assistant.

Run as its own process, as the benchmark always is: it makes Home Assistant's event loop,
turns on Home Assistant's blocking-call detection and owns the root logger.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_soak_counts_real_scans_and_decisions() -> None:
    command = [sys.executable, "-m", "tools.compact", "soak", "--minutes", "0.2"]
    command += ["--warmup", "3", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    # 12 s at 1 fps on two cameras: each shows Eileen, her turned head, a stranger, no face
    assert result["cameras"] == 2 and result["scans"] > 4
    assert result["scans"] + result["ticks_missed"] >= 16
    assert result["scan_errors"] == 0
    assert result["faces"]["match"] > 0 and result["faces"]["unknown"] > 0
    assert result["faces"]["no_face"] > 0
    decisions = result["decisions"]
    assert decisions.get("granted", 0) >= 1, decisions  # liveness off: two frames of her open it
    assert decisions.get("denied: unknown_face", 0) >= 1, decisions
    assert result["exceptions"] == 0, result["first_exceptions"]
    assert result["blocking_calls"] == 0
    assert 100 < result["rss_setup_mb"] <= result["rss_peak_mb"]
    assert result["rss_start_mb"] <= result["rss_peak_mb"] and result["rss_end_mb"] > 100
    assert result["loop_lag_worst_ms"] > 0 and result["loop_busy_worst_ms"] > 0
    assert result["control_lag_worst_ms"] >= 0  # the idle loop in another process reported
    assert sum(result["gc"]["runs"]) > 0 and result["gc"]["objects"] > 100_000


@pytest.mark.slow
def test_enroll_memory_measures_one_call() -> None:
    command = [sys.executable, "-m", "tools.compact", "enroll-memory", "--files", "3"]
    command += ["--mb", "2", "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["files"] == 3 and result["enrolled"] == 3  # padding after the photo is ignored
    assert 100 < result["rss_before_mb"] <= result["rss_peak_mb"]
    growth = result["rss_peak_mb"] - result["rss_before_mb"]
    assert abs(result["peak_growth_mb"] - growth) <= 0.2

"""The regression check compares metrics with committed floors and ceilings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.compact.errors import ToolError
from tools.compact.evaluate.regressions import THRESHOLDS, check_regressions, compare


def test_compare_flags_each_broken_limit() -> None:
    check = {"min": {"accuracy": 0.98, "top1": 0.9}, "max": {"far": 0.01}}
    lines = compare("x", {"accuracy": 0.97, "top1": 0.95, "far": 0.02}, check)
    assert [line.split()[0] for line in lines] == ["FAIL", "ok", "FAIL"]
    assert compare("x", {}, {"min": {"accuracy": 0.5}})[0].startswith("FAIL")


def test_committed_thresholds_are_well_formed() -> None:
    checks = json.loads(THRESHOLDS.read_text())["checks"]
    assert checks
    assert all(check["argv"] for check in checks)
    assert all(set(check) <= {"name", "argv", "json", "min", "max"} for check in checks)


def test_check_runs_commands_and_fails_on_regression(tmp_path: Path) -> None:
    pairs = tmp_path / "evaldata" / "faces"
    for name in ("ann", "bob"):
        (pairs / name).mkdir(parents=True)
        for i in (1, 2):
            (pairs / name / f"{name}_{i:04d}.jpg").write_bytes(b"")
    thresholds = tmp_path / "thresholds.json"
    make_pairs = ["make-pairs", "--images", "{evaldata}/faces", "--out", "{work}/p.txt"]
    thresholds.write_text(
        json.dumps({"checks": [{"name": "pairs", "argv": make_pairs, "json": False}]})
    )
    (result,) = check_regressions(thresholds, tmp_path / "evaldata")
    assert result.name == "pairs"
    assert not result.failed

    broken = [{"name": "bad", "argv": ["verify", "--pairs", "{work}/none.txt", "--images", "x"]}]
    thresholds.write_text(json.dumps({"checks": broken}))
    with pytest.raises(ToolError, match="bad: exit"):
        list(check_regressions(thresholds, tmp_path / "evaldata"))


def test_check_json_names_the_regression_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.compact.cli import main

    faces = tmp_path / "evaldata" / "faces"
    for name in ("ann", "bob"):
        (faces / name).mkdir(parents=True)
        for i in (1, 2):
            (faces / name / f"{name}_{i:04d}.jpg").write_bytes(b"")
    make_pairs = ["make-pairs", "--images", "{evaldata}/faces", "--out", "{work}/p.txt"]
    checks = [
        {"name": "pairs", "argv": make_pairs, "json": False},
        {"name": "floor", "argv": make_pairs, "json": False, "min": {"accuracy": 0.9}},
    ]
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps({"checks": checks}))
    argv = ["check-regressions", "--thresholds", str(thresholds), "--evaldata"]
    assert main([*argv, str(tmp_path / "evaldata"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "failed": True,
        "checks": [
            {"name": "pairs", "failed": False, "report": {}},
            {"name": "floor", "failed": True, "report": {}},  # no accuracy reported: FAIL
        ],
    }
    assert main([*argv, str(tmp_path / "none")]) == 1  # no evaluation data

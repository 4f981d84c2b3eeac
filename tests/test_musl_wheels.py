"""The pinned ncnn installs on Home Assistant OS (Alpine/musl) on x86-64 and ARM64.

Reads the committed list written by ``python -m tools.compact refresh-wheel-list``; no
network. Bumping ncnn in manifest.json without refreshing the list fails here.
"""

from __future__ import annotations

import json

import pytest

from tools.compact.pack.musl_wheels import (
    LIST_PATH,
    MANIFEST_PATH,
    PLATFORMS,
    PYTHONS,
    WheelRecord,
    parse_line,
    read_list,
)


def pinned_ncnn() -> str:
    requirements = json.loads(MANIFEST_PATH.read_text())["requirements"]
    (pin,) = [r for r in requirements if r.startswith("ncnn")]
    assert pin.startswith("ncnn=="), "manifest.json must pin an exact ncnn version"
    return str(pin)


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_pinned_ncnn_has_a_musllinux_1_2_wheel(python: str, arch: str) -> None:
    pin = pinned_ncnn()
    platform = f"musllinux_1_2_{arch}"
    assert platform in PLATFORMS
    (record,) = [
        r for r in read_list() if (r.requirement, r.python, r.platform) == (pin, python, platform)
    ]
    assert record.wheel is not None, f"PyPI has no {pin} wheel for {platform}, Python {python}"
    name, version, python_tag, abi_tag, platform_tag = record.wheel.removesuffix(".whl").split("-")
    cp = "cp" + python.replace(".", "")
    assert (name, f"{name}=={version}") == ("ncnn", pin)
    assert (python_tag, abi_tag) == (cp, cp)
    assert platform_tag.split(".")[0] == platform
    assert record.sha256 is not None and len(record.sha256) == 64


def test_list_covers_every_combination_once() -> None:
    records = read_list()
    keys = [(r.requirement.split("==")[0], r.python, r.platform) for r in records]
    assert len(keys) == len(set(keys))
    assert {(p, q) for _, p, q in keys} == {(p, q) for p in PYTHONS for q in PLATFORMS}
    assert LIST_PATH.read_text().startswith("# Written by")


def test_onnxruntime_has_no_musl_wheel() -> None:
    # Why the integration ships on ncnn: onnxruntime only helps on glibc machines.
    records = [r for r in read_list() if r.requirement.startswith("onnxruntime==")]
    assert records and all(r.wheel is None for r in records)


def test_list_lines_round_trip() -> None:
    record = WheelRecord("ncnn==1", "3.13", "musllinux_1_2_x86_64", None, None)
    assert record.line() == "ncnn==1 3.13 musllinux_1_2_x86_64 - -"
    assert parse_line(record.line()) == record

"""No distance of an unknown face anywhere: events, states, responses, diagnostics, logs.

A distance per try would let an attacker tune a presentation attack step by step. States and
events are readable by every user, so a recognized face shows no distance there either; the
admin-only scan service gives a recognized person's own distance (to tune enrollment).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback

from custom_components.compact_ai.diagnostics import async_get_config_entry_diagnostics

from .common import CAMERA, call, show
from .test_door import setup_door

NUMBER = re.compile(r"-?\d+\.\d+")
# a clock time's seconds ("11:40:01.338241") are no distance, whatever they happen to be
CLOCK = re.compile(r"\d{2}:\d{2}:\d{2}\.\d+")


def numbers(value: Any) -> Iterator[float]:
    """Every number in a nested structure, numbers written inside strings included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(key)
            yield from numbers(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, float):
        yield value
    elif isinstance(value, str):
        yield from (float(text) for text in NUMBER.findall(CLOCK.sub(" ", value)))


def keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from keys(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from keys(item)


def assert_hidden(secrets: list[float], *, keyed: bool = False, **payloads: Any) -> None:
    """No payload has a number that is one of ``secrets`` rounded, nor (unless ``keyed``) a
    ``distance`` key."""
    for where, payload in payloads.items():
        named = [key for key in keys(payload) if "distance" in key and key != "eye_distance"]
        assert keyed or not named, where
        close = [n for n in numbers(payload) for s in secrets if abs(n - s) < 5e-4]
        assert not close, f"{where} shows {close} (distances {secrets})"


async def test_no_distance_of_an_unknown_face_leaks(
    hass: HomeAssistant,
    camera_entity: str,
    door_lock: str,
    photo_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.compact_ai")
    entry = await setup_door(hass, camera_entity, door_lock, photo_dir)  # Eileen may open it
    await call(hass, "enroll_face", name="Tom", files=[str(photo_dir / "hanks.jpg")])
    recognizer = entry.runtime_data.faces.recognizer
    events: list[dict[str, Any]] = []

    @callback
    def record(event: Event) -> None:
        events.append({"type": event.event_type, "data": event.data})

    hass.bus.async_listen(MATCH_ALL, record)
    caplog.clear()

    # A stranger at the door: unknown, denied
    photo = (photo_dir / "stranger.jpg").read_bytes()
    (truth,) = (await hass.async_add_executor_job(recognizer.scan, photo)).recognitions
    assert truth.match.status == "unknown"
    secrets = [candidate.distance for candidate in truth.match.candidates]
    assert len(secrets) == 2  # to Eileen and to Tom
    await show(hass, photo_dir / "stranger.jpg")
    response = await call(hass, "scan")
    await hass.async_block_till_done()
    (face,) = response["cameras"][CAMERA]["faces"]
    assert face["status"] == "unknown" and face["quality"] in ("good", "low")
    assert {e["data"].get("new_state").attributes.get("reason") for e in events if
            e["type"] == "state_changed" and e["data"]["entity_id"].endswith("door_unlock")
            } == {"unknown_face"}  # fmt: skip
    states = [state.as_dict() for state in hass.states.async_all()]
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert ours, "the door's decision is logged (at debug level)"
    assert_hidden(
        secrets,
        response=response,
        events=events,
        states=states,
        diagnostics=diagnostics,
        logs=ours,
    )

    # Tom, known but not authorized: his event and state show no distance either; only the
    # admin's scan response gives his own distance, never the one to Eileen
    photo = (photo_dir / "hanks.jpg").read_bytes()
    (truth,) = (await hass.async_add_executor_job(recognizer.scan, photo)).recognitions
    own = truth.match.distance
    others = [c.distance for c in truth.match.candidates if c.distance != own]
    events.clear()
    caplog.clear()
    await show(hass, photo_dir / "hanks.jpg")
    response = await call(hass, "scan")
    await hass.async_block_till_done()
    (face,) = response["cameras"][CAMERA]["faces"]
    assert face["person"] == "Tom" and face["distance"] == round(own, 4)
    assert_hidden(others, keyed=True, response=response)
    states = [state.as_dict() for state in hass.states.async_all()]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert_hidden([own, *others], events=events, states=states, logs=ours)
    assert hass.states.get("event.front_door_faces_face").attributes["person"] == "Tom"

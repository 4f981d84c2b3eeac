"""The real logbook (with its recorder) words Compact AI's events through logbook.py."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.compact_ai.const import DOMAIN, EVENT_DOOR_DECISION

from .test_texts import door


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """The recorder must start before ``hass`` (tests/conftest.py asks for ``hass`` first)."""


async def test_the_logbook_shows_our_lines(
    recorder_mock: Any, hass: HomeAssistant, hass_ws_client: Any
) -> None:
    """The real logbook finds logbook.py and words a door decision with it."""
    assert await async_setup_component(hass, "logbook", {})
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    hass.bus.async_fire(EVENT_DOOR_DECISION, door().data)
    await hass.async_block_till_done()
    await hass.async_add_executor_job(recorder_mock.block_till_done)
    client = await hass_ws_client()
    await client.send_json(
        {"id": 1, "type": "logbook/get_events", "start_time": "2000-01-01T00:00:00+00:00"}
    )
    answer = await client.receive_json()
    ours = [row for row in answer["result"] if row.get("domain") == DOMAIN]
    assert [row["message"] for row in ours] == [
        "stayed locked for Eileen (camera camera.gate): Face did not move like a live head"
    ]
    assert ours[0]["entity_id"] == "lock.front_door"

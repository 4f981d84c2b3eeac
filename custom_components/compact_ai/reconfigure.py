"""Saved options take effect without a reload where they can.

A reload removes every entity and adds it again: each goes unavailable for a moment (a
logbook line each) and what is only in memory is gone. So only a new tier or backend (other
models) or other cameras (other entities) reload the entry; the scan triggers, the interval
and the door settings are applied to the running entry, and turning the door on or off adds
or removes just its event entity. The door's cooldown and back-off outlive its controller
(turned off and on, or the entry reloaded): they stay in ``hass.data`` until Home Assistant
stops or the entry is removed, so no settings change lets anyone try again sooner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    CONF_CAMERAS,
    CONF_SCAN_INTERVAL,
    CONF_TIER,
    CONF_TRIGGERS,
    CONF_UNLOCK,
    DEFAULT_TIER,
    DOMAIN,
)
from .data import CompactAIConfigEntry
from .door import async_check_door_people, door_from_options
from .engine.door.policy import UnlockDecider

DECIDERS = f"{DOMAIN}_door_deciders"  # hass.data: entry id -> its door's decider
# What each option is when it was never saved (an entry set up by an older version).
_RELOAD_DEFAULTS: dict[str, Any] = {CONF_TIER: DEFAULT_TIER, CONF_BACKEND: BACKEND_AUTO}
_RELOAD_OPTIONS = (CONF_TIER, CONF_BACKEND, CONF_CAMERAS)
_SCAN_OPTIONS = (CONF_CAMERAS, CONF_TRIGGERS, CONF_SCAN_INTERVAL)


def forget_door(hass: HomeAssistant, entry_id: str) -> None:
    """Drop the cooldown and back-off of a removed entry's door."""
    hass.data.get(DECIDERS, {}).pop(entry_id, None)


def door_signal(entry: CompactAIConfigEntry) -> str:
    """Return the dispatcher signal sent when the door is turned on or off."""
    return f"{DOMAIN}_door_{entry.entry_id}"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    return any(
        old.get(key, _RELOAD_DEFAULTS.get(key)) != new.get(key, _RELOAD_DEFAULTS.get(key))
        for key in keys
    )


def needs_reload(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Return whether going from ``old`` to ``new`` options needs other models or entities."""
    return _changed(old, new, _RELOAD_OPTIONS)


@callback
def async_apply_door(hass: HomeAssistant, entry: CompactAIConfigEntry) -> None:
    """Build, change or remove the running door controller to match the entry's options."""
    runtime = entry.runtime_data
    unlock: dict[str, Any] = entry.options.get(CONF_UNLOCK, {})
    async_check_door_people(hass, unlock)
    recognizer = runtime.faces.recognizer
    people = runtime.people
    deciders: dict[str, UnlockDecider] = hass.data.setdefault(DECIDERS, {})
    wanted = (
        door_from_options(
            hass,
            unlock,
            recognizer.unlock_threshold,
            recognizer.strict_threshold,
            lambda person_id: people.names().get(person_id, person_id),
            people.waiting,
            deciders.get(entry.entry_id),
        )
        if recognizer is not None
        else None
    )
    if wanted is not None:  # kept while Home Assistant runs: a reload never resets the door
        deciders[entry.entry_id] = wanted.decider
    door = runtime.door
    if door is not None and wanted is not None:
        door.reconfigure(wanted.lock, wanted.policy, wanted.presence)
        return
    if door is not None:
        door.async_flush()  # folded denials are told before the door's entity goes
    runtime.door = wanted
    if (door is None) != (wanted is None):
        async_dispatcher_send(hass, door_signal(entry))


async def async_options_updated(hass: HomeAssistant, entry: CompactAIConfigEntry) -> None:
    """Apply changed options to the running entry; reload only for models or cameras."""
    runtime = entry.runtime_data
    old, new = runtime.options, dict(entry.options)
    if needs_reload(old, new):
        hass.config_entries.async_schedule_reload(entry.entry_id)
        return
    runtime.options = new
    if _changed(old, new, _SCAN_OPTIONS):
        runtime.scans.async_apply(new)
    if old.get(CONF_UNLOCK) != new.get(CONF_UNLOCK):
        async_apply_door(hass, entry)

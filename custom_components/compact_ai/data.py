"""Runtime data kept on the config entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .people import People


@dataclass(slots=True)
class CompactAIRuntime:
    """What a loaded entry holds: the resolved backend, the tier and the enrolled people."""

    backend: str
    tier: str
    people: People


type CompactAIConfigEntry = ConfigEntry[CompactAIRuntime]

"""Runtime data kept on the config entry."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry


@dataclass(slots=True)
class CompactAIRuntime:
    """What a loaded entry holds: the resolved backend and the chosen tier."""

    backend: str
    tier: str


type CompactAIConfigEntry = ConfigEntry[CompactAIRuntime]

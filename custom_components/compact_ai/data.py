"""Runtime data kept on the config entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry

from .door import DoorController
from .face.last_seen import LastSeen
from .face.manager import FaceManager
from .face.people import People
from .scanning import ScanSchedule
from .voice.commands import VoiceCommands
from .voice.manager import VoiceManager


@dataclass(slots=True)
class CompactAIRuntime:
    """What a loaded entry holds."""

    backend: str
    tier: str
    people: People
    faces: FaceManager
    door: DoorController | None
    model_error: str | None
    voice: VoiceManager
    commands: VoiceCommands
    scans: ScanSchedule
    last_seen: LastSeen
    options: dict[str, Any]  # the options in effect (changes are applied by reconfigure.py)


type CompactAIConfigEntry = ConfigEntry[CompactAIRuntime]

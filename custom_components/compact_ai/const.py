"""Constants of the Compact AI integration."""

from __future__ import annotations

from pathlib import Path
from typing import Final

DOMAIN: Final = "compact_ai"
# The shipped model pack (read at call time as const.PACK_DIR, so tests can point elsewhere).
PACK_DIR: Path = Path(__file__).resolve().parent / "models"

CONF_TIER: Final = "tier"
CONF_CAMERAS: Final = "cameras"
CONF_BACKEND: Final = "backend"
# The collapsed form section of the options' settings step that holds CONF_BACKEND (the stored
# options keep CONF_BACKEND at the top level).
SECTION_ADVANCED: Final = "advanced"
CONF_TRIGGERS: Final = "triggers"
CONF_SCAN_INTERVAL: Final = "scan_interval"
CONF_UNLOCK: Final = "unlock"
CONF_PHRASES: Final = "phrases"  # voice command phrases (kept in the voice store, not options)
CONF_TTS_ENTITIES: Final = "tts_entities"  # TTS entities that speak them (voice store too)

# Keys of the unlock policy (stored under options[CONF_UNLOCK]).
CONF_ENABLED: Final = "enabled"
CONF_LOCK: Final = "lock"
CONF_UNLOCK_CAMERAS: Final = "unlock_cameras"
CONF_PEOPLE: Final = "people"
CONF_FRAMES_REQUIRED: Final = "frames_required"
CONF_FRAMES_WINDOW: Final = "frames_window"
CONF_WINDOW_SECONDS: Final = "window_seconds"
CONF_STRICT: Final = "strict"
CONF_COOLDOWN: Final = "cooldown"
CONF_LIVENESS: Final = "liveness"
CONF_REQUIRE_PRESENCE: Final = "require_presence"
CONF_PRESENCE: Final = "presence"

TIERS: Final = ("accurate", "balanced", "fast")
DEFAULT_TIER: Final = "balanced"

BACKEND_AUTO: Final = "auto"
BACKEND_CHOICES: Final = (BACKEND_AUTO, "onnxruntime", "ncnn")

DEFAULT_UNLOCK: Final = {
    CONF_ENABLED: False,
    CONF_FRAMES_REQUIRED: 2,
    CONF_FRAMES_WINDOW: 3,
    CONF_WINDOW_SECONDS: 5,
    CONF_STRICT: False,
    CONF_COOLDOWN: 30,
    CONF_LIVENESS: True,
    CONF_REQUIRE_PRESENCE: False,
}

# Bus events, worded for the logbook by logbook.py.
EVENT_DOOR_DECISION: Final = f"{DOMAIN}_door_decision"
EVENT_FACES_RECOGNIZED: Final = f"{DOMAIN}_faces_recognized"
EVENT_VOICE_COMMAND: Final = f"{DOMAIN}_voice_command"

"""Constants of the Compact AI integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "compact_ai"

CONF_TIER: Final = "tier"
CONF_CAMERAS: Final = "cameras"
CONF_BACKEND: Final = "backend"

TIERS: Final = ("accurate", "balanced", "fast")
DEFAULT_TIER: Final = "balanced"

BACKEND_AUTO: Final = "auto"
BACKEND_CHOICES: Final = (BACKEND_AUTO, "onnxruntime", "ncnn")

"""Icons are icon translations (icons.json), loaded by Home Assistant for every entity and action.

Entities without an entry here show their platform's or device class's own icon.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.icon import async_get_icons
from homeassistant.util.yaml import load_yaml_dict

from custom_components.compact_ai.const import DOMAIN

INTEGRATION = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN
# Their platform or device class gives these an icon already.
OWN_ICON = {("sensor", "inference_time"), ("stt", "commands"), ("wake_word", "wake_phrases")}
MDI = re.compile(r"mdi:[a-z0-9]+(?:-[a-z0-9]+)*")


def _json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((INTEGRATION / name).read_text(encoding="utf-8"))
    return data


def _icons_in(tree: Any) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    return [icon for value in tree.values() for icon in _icons_in(value)]


async def test_home_assistant_loads_every_icon(hass: HomeAssistant) -> None:
    icons = _json("icons.json")
    assert await async_get_icons(hass, "entity", [DOMAIN]) == {DOMAIN: icons["entity"]}
    assert await async_get_icons(hass, "services", [DOMAIN]) == {DOMAIN: icons["services"]}
    assert all(MDI.fullmatch(icon) for icon in _icons_in(icons))


def test_every_entity_state_and_event_type_has_an_icon() -> None:
    icons = _json("icons.json")["entity"]
    names = _json("translations/en.json")["entity"]
    for platform, keys in names.items():
        for key, text in keys.items():
            if (platform, key) in OWN_ICON:
                assert key not in icons.get(platform, {})
                continue
            icon = icons[platform][key]
            assert MDI.fullmatch(icon["default"])
            if platform == "event":
                event_types = text["state_attributes"]["event_type"]["state"]
                assert set(icon["state_attributes"]["event_type"]["state"]) == set(event_types)
            elif "state" in icon:
                assert set(icon["state"]) == set(text["state"])


def test_every_action_has_an_icon() -> None:
    actions = load_yaml_dict(str(INTEGRATION / "services.yaml"))
    assert set(_json("icons.json")["services"]) == set(actions)


def test_no_icon_is_set_in_code() -> None:
    """An icon in code would hide the icon translation."""
    sources = [path.read_text(encoding="utf-8") for path in INTEGRATION.rglob("*.py")]
    assert not [text for text in sources if re.search(r"_attr_icon\b|\bicon=", text)]

"""Every word in both languages, every number from the pack or a measurement, logbook lines.

That both languages have the same keys: tests/test_packaging.py.
"""

from __future__ import annotations

import json
import re
import shutil
import string
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import Event, HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.compact_ai import const
from custom_components.compact_ai.const import (
    DOMAIN,
    EVENT_DOOR_DECISION,
    EVENT_FACES_RECOGNIZED,
    EVENT_VOICE_COMMAND,
)
from custom_components.compact_ai.engine.face.household import HouseholdCheck
from custom_components.compact_ai.helpers.texts import async_load_texts
from custom_components.compact_ai.logbook import describe_door, describe_faces, describe_voice
from custom_components.compact_ai.tiers import Timing, benchmark_placeholders

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts" / "dev_config"))
from page_checks import strings

LANGUAGES = ("en", "zh-Hans")
# Latin words a Chinese string may hold: names of products, programs, files and units.
NAMES = {
    "AI", "Compact", "Home", "Assistant", "OS", "HACS", "onnxruntime", "ncnn", "espeak", "ng",
    "flite", "festival", "WAV", "PCM", "allowlist_external_dirs", "media", "open", "the",
    "garage", "MB", "JPEG", "PNG", "Piper", "Wyoming", "Assist",
}  # fmt: skip
# "open the garage" is an example phrase: voice commands are English words in every language.


def fields(template: str) -> set[str]:
    """Return the placeholders of a string, parsed as Home Assistant parses them."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def render(language: str, key: str, placeholders: dict[str, str]) -> str:
    """Fill a string as the frontend does; every placeholder it names must be given."""
    template = strings(language)[key]
    missing = fields(template) - set(placeholders)
    assert not missing, f"{language} {key}: no value for {missing}"
    return template.format(**placeholders)


def test_both_languages_have_the_same_placeholders() -> None:
    """Home Assistant drops a translated string whose placeholders differ from English."""
    en, zh = strings("en"), strings("zh-Hans")
    differ = {
        key: (fields(en[key]), fields(zh[key])) for key in en if fields(en[key]) != fields(zh[key])
    }
    assert differ == {}


def test_no_english_words_in_chinese() -> None:
    words = {
        (key, word)
        for key, value in strings("zh-Hans").items()
        for word in re.findall(r"[A-Za-z][A-Za-z_]*", re.sub(r"\{[^}]*\}", "", value))
        if word not in NAMES
    }
    assert sorted(words) == []


def test_texts_say_no_jargon() -> None:
    text = "\n".join(strings("en").values())
    for jargon in ("pruned", "quantized", "neural network", "lock.unlock", "ms/face"):
        assert jargon not in text


async def test_tier_table_comes_from_the_pack(hass: HomeAssistant, tmp_path: Path) -> None:
    """A pack whose balanced tier has another embedder shows three model sets and its numbers."""
    manifest = json.loads((const.PACK_DIR / "manifest.json").read_text())
    embedder = manifest["tiers"]["balanced"]["models"]["face_embedder"]
    for files in embedder["files"].values():
        files[-1]["sha256"] = "0" * 64
    embedder["metrics"].update(lfw_accuracy=0.9512, lfw_accuracy_ncnn=0.9512)
    embedder["metrics"].update(ms_per_face_ncnn=2.04, ms_per_face_onnxruntime=2.04)
    shutil.copytree(const.PACK_DIR, tmp_path / "pack")
    (tmp_path / "pack" / "manifest.json").write_text(json.dumps(manifest))
    with patch("custom_components.compact_ai.const.PACK_DIR", tmp_path / "pack"):
        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    values = result["description_placeholders"]
    assert [values[f"{tier}_set"] for tier in const.TIERS] == ["1", "2", "3"]
    assert (values["balanced_accuracy"], values["balanced_ms"]) == ("95.1", "2.0")
    assert values["accurate_accuracy"] != "95.1"
    for language in LANGUAGES:
        table = render(language, "config.step.user.data_description.tier", values)
        assert "| 95.1 |" in table and "| 2.0 |" in table
        render(language, "config.step.user.description", values)


async def test_benchmark_tables_render(hass: HomeAssistant) -> None:
    check = HouseholdCheck(faces=4, recognized=3, nearest_other=1.0, door_distance=0.4)
    values = benchmark_placeholders(dict.fromkeys(const.TIERS, Timing(7.0, 7, check)))
    keys = ("set", "accuracy", "door", "ms", "reach", "size")
    values |= {f"{tier}_{key}": "1" for tier in const.TIERS for key in keys}
    for language in LANGUAGES:
        for step in ("benchmark", "benchmark_no_camera"):
            table = render(language, f"options.step.{step}.description", values)
            assert "| 7 | 7 | 7 |" in table
            assert "| 3 / 4 | 3 / 4 | 3 / 4 |" in table and "| 2.50 | 2.50 | 2.50 |" in table
            render(language, f"options.step.{step}.data_description.tier", values)


def door(**data: Any) -> Event:
    base = {
        "entity_id": "lock.front_door",
        "granted": False,
        "person": "Eileen",
        "reason": "static_face",
        "camera": "camera.gate",
        "folded": 0,
        "window": 5.0,
    }
    return Event(EVENT_DOOR_DECISION, {**base, **data})


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "was unlocked by face for Eileen (camera camera.gate)",
                "stayed locked for Eileen (camera camera.gate): Face did not move like a live head",
                "stayed locked for an unknown face (camera camera.gate): Unknown face; "
                "the same again 1 more time within 5 s",
                "stayed locked for an unknown face (camera camera.gate): Unknown face; "
                "the same again 3 more times within 5 s",
                "recognized Eileen, Bob",
                'heard the command "open the garage"',
            ],
        ),
        (
            "zh-Hans",
            [
                "已为 Eileen 刷脸开锁（摄像头 camera.gate）",
                "没有为 Eileen 开锁（摄像头 camera.gate）：人脸没有像真人头部一样移动",
                "没有为陌生人脸开锁（摄像头 camera.gate）：陌生人脸；5 秒内又有 1 次相同的尝试",
                "没有为陌生人脸开锁（摄像头 camera.gate）：陌生人脸；5 秒内又有 3 次相同的尝试",
                "认出了 Eileen、Bob",
                "听到了指令“open the garage”",
            ],
        ),
    ],
)
async def test_logbook_lines_in_home_assistants_language(
    hass: HomeAssistant, language: str, expected: list[str]
) -> None:
    hass.config.language = language
    await async_load_texts(hass)
    unknown = {"person": None, "reason": "unknown_face"}
    lines = [
        describe_door(hass, door(granted=True, reason="matched"))["message"],
        describe_door(hass, door())["message"],
        describe_door(hass, door(**unknown, folded=1))["message"],
        describe_door(hass, door(**unknown, folded=3))["message"],
        describe_faces(
            hass,
            Event(
                EVENT_FACES_RECOGNIZED,
                {
                    "entity_id": "event.x",
                    "camera": "camera.front_door",
                    "people": ["Eileen", "Bob"],
                },
            ),
        )["message"],
        describe_voice(
            hass, Event(EVENT_VOICE_COMMAND, {"entity_id": "event.y", "phrase": "open the garage"})
        )["message"],
    ]
    assert lines == expected


async def test_logbook_line_in_a_language_we_lack(hass: HomeAssistant) -> None:
    """A language without our strings (switched to at run time) gets English lines."""
    await async_load_texts(hass)
    hass.config.language = "de"
    assert describe_door(hass, door())["message"].startswith("stayed locked for Eileen")
    await hass.async_block_till_done()  # its loading was tried once, in the background
    assert describe_door(hass, door())["message"].startswith("stayed locked for Eileen")


async def test_settings_table_when_the_stored_backend_cannot_load(hass: HomeAssistant) -> None:
    """A stored backend that cannot be loaded here: the table shows what automatic runs."""
    entry = MockConfigEntry(domain=DOMAIN, options={const.CONF_BACKEND: "gone", "cameras": []})
    entry.add_to_hass(hass)
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "settings"}
    )
    assert result["step_id"] == "settings"
    assert result["description_placeholders"]["fast_reach"] == "2.0"


# The top-level keys hassfest's translation schema allows (it validates translations/en.json of
# custom integrations too, and refuses any other key).
HASSFEST_KEYS = {
    "title", "config", "options", "selector", "device_automation", "system_health",
    "config_panel", "application_credentials", "issues", "entity_component", "device", "entity",
    "exceptions", "services", "conversation", "common",
}  # fmt: skip


def test_strings_are_as_hassfest_wants() -> None:
    """Known top-level keys only; no leading or trailing spaces; no HTML."""
    for language in LANGUAGES:
        top = {key.split(".")[0] for key in strings(language)}
        assert top <= HASSFEST_KEYS, top - HASSFEST_KEYS
        for key, value in strings(language).items():
            assert value == value.strip(), key
            assert not re.search(r"<[a-zA-Z/]", value), key

"""scripts/browser_check.py's judging of a page, on made-up pages (no browser needed)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "scripts" / "dev_config"))

from page_checks import page_problems, strings


def image(src: str, width: int) -> dict[str, object]:
    return {"src": src, "complete": True, "width": width}


CDN_ICON = image("https://brands.home-assistant.io/_/compact_ai/icon.png", 0)  # not reachable
LOCAL_ICON = image("http://127.0.0.1:8123/local/astronaut.png", 512)


def test_a_chinese_page_of_ours_passes() -> None:
    zh = strings("zh-Hans")
    text = "\n".join(
        [zh["options.step.settings.title"], zh["selector.tier.options.fast"], "Front door"]
    )
    assert page_problems(text, [CDN_ICON, LOCAL_ICON], [], "zh-Hans") == []


def test_english_of_ours_on_a_chinese_page_fails() -> None:
    en, zh = strings("en"), strings("zh-Hans")
    sentence = "\n".join([zh["options.step.settings.title"], en["options.step.unlock.description"]])
    label = "\n".join([zh["options.step.settings.title"], en["selector.tier.options.balanced"]])
    for text in (sentence, label):
        [problem] = page_problems(text, [], [], "zh-Hans")
        assert problem.startswith("English text of ours in zh-Hans")
    assert page_problems(sentence, [], [], "en") == []  # English is fine in English


def test_raw_keys_alerts_and_broken_images_fail() -> None:
    broken = image("http://127.0.0.1:8123/api/brands/integration/compact_ai/icon.png", 0)
    problems = page_problems(
        "component.compact_ai.options.step.voice.title", [broken], ["Unknown error"], "en"
    )
    assert [p.split(" ")[0] for p in problems] == ["raw", "error", "broken"]

"""What no page of Compact AI may show, judged from its text, images and alerts.

No browser here (scripts/browser_check.py collects what a page shows), so tests can check the
judging on made-up pages.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

DOMAIN = "compact_ai"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN / "translations"
BRANDS_CDN = "https://brands.home-assistant.io/"


@functools.cache
def strings(language: str) -> dict[str, str]:
    """Return our translation strings under their dotted keys."""
    out: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else key, value)
        else:
            out[prefix] = str(node)

    walk("", json.loads((TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8")))
    return out


@functools.cache
def english_fragments() -> tuple[frozenset[str], frozenset[str]]:
    """Return our English sentences (and single labels) that a Chinese page must not show.

    Strings that are the same in both languages (names such as "Compact AI") are left out.
    """
    en, zh = strings("en"), strings("zh-Hans")
    same = {value for key, value in en.items() if zh.get(key) == value}
    sentences: set[str] = set()
    labels: set[str] = set()
    for key, value in en.items():
        if value in same or not key.startswith(("config.", "options.", "selector.")):
            continue
        for part in re.split(r"\{[^}]*\}|\n|\||(?<=[.:;])\s", value):
            part = part.strip(' .:;,()"-')
            if " " in part and len(part) >= 12:
                sentences.add(part)
            elif " " not in part and len(part) >= 4 and part not in same:
                labels.add(part)
    return frozenset(sentences), frozenset(labels)


def page_problems(
    text: str, images: list[dict[str, Any]], alerts: list[str], language: str
) -> list[str]:
    """Return what is wrong with a page: raw keys, alerts, broken images, English of ours.

    ``text`` is what the page shows, one text node per line; ``images`` the shown images
    (src, complete, natural width); ``alerts`` the shown error alerts and toasts. The brands
    CDN's images are left out: the browser may not reach it (browser_check.py checks ours).
    """
    problems: list[str] = []
    if raw := sorted(set(re.findall(rf"component\.{DOMAIN}\.[\w.]+", text))):
        problems.append(f"raw translation keys {raw}")
    if alerts:
        problems.append(f"error alert or toast: {alerts}")
    for image in images:
        if image["complete"] and image["width"] == 0 and not image["src"].startswith(BRANDS_CDN):
            problems.append(f"broken image {image['src']}")
    if language != "en":
        sentences, labels = english_fragments()
        lines = set(text.splitlines())
        english = sorted(s for s in sentences if s in text)
        english += sorted(label for label in labels if label in lines)
        if english:
            problems.append(f"English text of ours in {language}: {english[:8]}")
    return problems

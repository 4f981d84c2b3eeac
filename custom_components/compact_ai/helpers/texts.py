"""Texts that the backend itself must word: from translations/*.json, in Home Assistant's language.

Most texts are worded by the frontend in each user's language. A few are plain text made by the
backend (logbook lines): those follow the language set in Settings → System → General
(hass.config.language), falling back to English while that language's strings are loading.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.translation import (
    async_get_cached_translations,
    async_get_translations,
)

from ..const import DOMAIN

# "common": the only free-form category hassfest accepts; the logbook's strings are there.
CATEGORIES = ("common", "entity")
FALLBACK = "en"
REQUESTED = f"{DOMAIN}_texts_requested"  # languages whose loading was started here


async def async_load_texts(hass: HomeAssistant, language: str | None = None) -> None:
    """Load our strings of ``language`` (default: Home Assistant's) and of English."""
    for lang in {language or hass.config.language, FALLBACK}:
        for category in CATEGORIES:
            await async_get_translations(hass, lang, category, [DOMAIN])


@callback
def text(hass: HomeAssistant, category: str, key: str, **placeholders: Any) -> str:
    """Return the string ``component.compact_ai.<category>.<key>`` with its placeholders.

    A language whose strings are not loaded yet is loaded in the background; English is used
    meanwhile. A key that no language has is returned as it is.
    """
    language = hass.config.language
    wanted = f"component.{DOMAIN}.{category}.{key}"
    strings = async_get_cached_translations(hass, language, category, DOMAIN)
    requested: set[str] = hass.data.setdefault(REQUESTED, set())
    if not strings and language not in requested:  # once: a language we lack stays empty
        requested.add(language)
        hass.async_create_background_task(
            async_load_texts(hass, language), f"{DOMAIN} load {language} texts"
        )
    template = strings.get(wanted) or async_get_cached_translations(
        hass, FALLBACK, category, DOMAIN
    ).get(wanted)
    return key if template is None else template.format(**placeholders)

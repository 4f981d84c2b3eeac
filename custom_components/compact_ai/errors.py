"""Errors of the Home Assistant layer that carry a translation key for the user."""

from __future__ import annotations


class UserError(Exception):
    """A request that cannot be fulfilled; ``key`` names the translation."""

    def __init__(self, key: str, **placeholders: str) -> None:
        """Keep the translation key and its placeholders."""
        super().__init__(key)
        self.key = key
        self.placeholders = placeholders

"""Shared fixtures: load custom integrations from this repository in every HA test.

Tests never download: a source file missing from the cache fails with the setup command.
"""

from __future__ import annotations

import os

import pytest

from tools.compact.pack.sources import OFFLINE_ENV

os.environ[OFFLINE_ENV] = "1"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load custom_components/compact_ai in tests that use ``hass``."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")

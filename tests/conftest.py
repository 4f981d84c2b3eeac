"""Shared fixtures: load custom integrations from this repository in every HA test.

Tests never download: a source file missing from the cache fails with the setup command.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

from tools.compact.pack.sources import OFFLINE_ENV

os.environ[OFFLINE_ENV] = "1"
# A temp folder per test run: Home Assistant's file_upload keeps uploads in a fixed folder
# under it and removes that folder when hass stops, so two runs on one machine raced.
tempfile.tempdir = tempfile.mkdtemp(prefix="compact-ai-tests-")
atexit.register(shutil.rmtree, tempfile.tempdir, ignore_errors=True)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let HA load custom_components/compact_ai in tests that use ``hass``."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")

"""scripts/develop's configuration stays valid for the Home Assistant version we test against.

The real start is checked by scripts/check_develop.py; these tests are the fast part of it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from homeassistant.components import onboarding
from homeassistant.components.onboarding.const import STEP_USER, STEPS
from homeassistant.core import HomeAssistant
from homeassistant.helpers.check_config import async_check_ha_config_file

DEV_CONFIG = Path(__file__).resolve().parent.parent / "scripts" / "dev_config"
sys.path.append(str(DEV_CONFIG))

from ha_api import HAError, HomeAssistant as HomeAssistantClient  # noqa: E402


async def test_configuration_template_passes_check_config(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    template = (DEV_CONFIG / "configuration.yaml").read_text()
    assert "@PORT@" in template
    (tmp_path / "configuration.yaml").write_text(template.replace("@PORT@", "18123"))
    for name, empty in (("automations.yaml", "[]"), ("scenes.yaml", "[]"), ("scripts.yaml", "{}")):
        (tmp_path / name).write_text(empty + "\n")
    hass.config.config_dir = str(tmp_path)

    res = await async_check_ha_config_file(hass)

    assert not res.errors, [str(error) for error in res.errors]
    assert res["http"]["server_host"] == ["127.0.0.1"]
    assert res["http"]["server_port"] == 18123
    assert "default_config" not in res
    assert res["input_boolean"]["front_door_locked"]["name"] == "Front door locked"
    (lock,) = res["template"][0]["lock"]
    assert lock["unlock"][0]["action"] == "input_boolean.turn_off"


def test_onboarding_seed_leaves_only_the_user_step() -> None:
    seed = json.loads((DEV_CONFIG / "onboarding.json").read_text())
    assert seed["key"] == onboarding.STORAGE_KEY
    assert seed["version"] == onboarding.STORAGE_VERSION
    assert set(seed["data"]["done"]) == set(STEPS) - {STEP_USER}


@pytest.mark.parametrize("url", ["http://10.0.0.2:8123", "http://example.org"])
def test_client_talks_to_loopback_only(url: str) -> None:
    with pytest.raises(HAError):
        HomeAssistantClient(url)


def test_client_accepts_loopback() -> None:
    assert HomeAssistantClient("http://127.0.0.1:8123/").client_id == "http://127.0.0.1:8123/"

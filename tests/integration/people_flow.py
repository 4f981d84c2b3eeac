"""Helpers for the People page tests: uploads through Home Assistant's HTTP API, flow steps.

Every step a helper returns is checked against both translations: each placeholder its
texts use (title, description, field labels, errors, progress) is one the step sends, so no
page shows a raw ``{name}``.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from homeassistant.components.file_upload import TEMP_DIR_NAME
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

UPLOADS = Path(tempfile.gettempdir()) / TEMP_DIR_NAME
TRANSLATIONS = Path(__file__).parents[2] / "custom_components" / "compact_ai" / "translations"
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def checked(result: ConfigFlowResult, flow: str = "options") -> ConfigFlowResult:
    """Return ``result`` after checking that its translated texts get all their placeholders."""
    sent = set(result.get("description_placeholders") or {})
    for language in ("en", "zh-Hans"):
        options = json.loads((TRANSLATIONS / f"{language}.json").read_text())[flow]
        if result["type"] == "create_entry" and result.get("description"):
            texts = [options["create_entry"][result["description"]]]
        elif result["type"] == "progress":
            texts = [options["progress"][result["progress_action"]]]
        elif result["type"] in ("form", "menu"):
            step = options["step"][result["step_id"]]
            texts = [step.get("title", ""), step.get("description", "")]
            texts += list(step.get("menu_options", {}).values())
            fields = [str(key) for key in getattr(result.get("data_schema"), "schema", {})]
            for kind in ("data", "data_description"):
                texts += [step.get(kind, {}).get(field, "") for field in fields]
            texts += [options["error"][key] for key in (result.get("errors") or {}).values()]
        else:
            continue
        wanted = {name for text in texts for name in PLACEHOLDER.findall(text)}
        assert wanted <= sent, (language, result.get("step_id"), wanted - sent)
    return result


class Uploader:
    """Uploads files as the browser's file picker does (POST /api/file_upload)."""

    def __init__(self, hass_client: ClientSessionGenerator) -> None:
        """Use an admin's HTTP client."""
        self._hass_client = hass_client

    async def __call__(self, path: Path) -> str:
        """Upload ``path``; return its file id."""
        client = await self._hass_client()
        with path.open("rb") as handle:
            response = await client.post("/api/file_upload", data={"file": handle})
        assert response.status == 200, await response.text()
        file_id: str = (await response.json())["file_id"]
        return file_id


def uploads_left() -> list[str]:
    """Return the uploads still waiting in Home Assistant's temporary folder."""
    return sorted(p.name for p in UPLOADS.iterdir()) if UPLOADS.exists() else []


async def people_page(hass: HomeAssistant, entry: MockConfigEntry) -> ConfigFlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return checked(
        await hass.config_entries.options.async_configure(
            result["flow_id"], {"next_step_id": "people"}
        )
    )


async def choose(hass: HomeAssistant, result: ConfigFlowResult, step: str) -> ConfigFlowResult:
    return checked(
        await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": step})
    )


async def submit(
    hass: HomeAssistant, result: ConfigFlowResult, data: dict[str, Any]
) -> ConfigFlowResult:
    return checked(await hass.config_entries.options.async_configure(result["flow_id"], data))


async def after_capture(hass: HomeAssistant, result: ConfigFlowResult) -> ConfigFlowResult:
    """Wait for the snapshots of a progress step; return the step shown next."""
    assert result["type"] == "progress" and result["progress_action"] == "capture"
    await hass.async_block_till_done()
    return checked(await hass.config_entries.options.async_configure(result["flow_id"]))


def outcomes(result: ConfigFlowResult) -> dict[str, str]:
    """Return the read-only outcome field of each image (its default is the outcome)."""
    return {
        str(key): key.default()
        for key, selector in result["data_schema"].schema.items()
        if getattr(selector, "config", {}).get("read_only")
    }


def table_rows(result: ConfigFlowResult) -> list[str]:
    return result["description_placeholders"]["people"].splitlines()

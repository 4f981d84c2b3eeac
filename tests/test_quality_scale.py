"""quality_scale.yaml rates every rule of Home Assistant's integration quality scale.

The rules are those of hassfest (script/hassfest/quality_scale.py, ``ALL_RULES``) in the
Home Assistant releases we test with; each has a status and a reason. The rules whose
``done`` can be checked from the files are checked here the way hassfest checks them.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from homeassistant.util.yaml import load_yaml_dict

INTEGRATION = Path(__file__).resolve().parents[1] / "custom_components" / "compact_ai"
RULES = {
    "bronze": (
        "action-setup", "appropriate-polling", "brands", "common-modules", "config-flow",
        "config-flow-test-coverage", "dependency-transparency", "docs-actions",
        "docs-conditions", "docs-high-level-description", "docs-installation-instructions",
        "docs-removal-instructions", "docs-triggers", "entity-event-setup", "entity-unique-id",
        "has-entity-name", "runtime-data", "test-before-configure", "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner",
        "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    ),
    "gold": (
        "devices", "diagnostics", "discovery", "discovery-update-info", "docs-data-update",
        "docs-examples", "docs-known-limitations", "docs-supported-devices",
        "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
        "entity-category", "entity-device-class", "entity-disabled-by-default",
        "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}  # fmt: skip
PLATFORMS = ("event", "sensor", "stt", "wake_word")


def rules() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))[
        "rules"
    ]
    return loaded


def test_every_rule_has_a_status_and_a_reason() -> None:
    scale = rules()
    assert list(scale) == [rule for tier in RULES.values() for rule in tier]
    for rule, rating in scale.items():
        assert set(rating) == {"status", "comment"}, rule
        assert rating["status"] in {"done", "todo", "exempt"}, rule
        assert len(rating["comment"]) >= 10, rule


def test_every_platform_sets_parallel_updates() -> None:
    assert rules()["parallel-updates"]["status"] == "done"
    for platform in PLATFORMS:
        tree = ast.parse((INTEGRATION / f"{platform}.py").read_text(encoding="utf-8"))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "PARALLEL_UPDATES" in names, platform


def test_done_rules_that_files_show() -> None:
    scale = rules()
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    done = {rule for rule, rating in scale.items() if rating["status"] == "done"}
    assert {"unique-config-entry", "config-flow", "diagnostics", "icon-translations"} <= done
    assert manifest["single_config_entry"] and manifest["config_flow"]
    assert (INTEGRATION / "diagnostics.py").is_file()
    assert (INTEGRATION / "icons.json").is_file()
    assert (INTEGRATION / "brand" / "icon.png").is_file()
    source = (INTEGRATION / "__init__.py").read_text(encoding="utf-8")
    assert "async def async_unload_entry" in source  # config-entry-unloading
    assert "type CompactAIConfigEntry = ConfigEntry[" in (INTEGRATION / "data.py").read_text()

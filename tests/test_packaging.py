"""manifest.json and hacs.json hold exactly what hassfest and HACS accept.

The allowed keys are written down from the validators' documented schemas: hassfest's
``CUSTOM_INTEGRATION_MANIFEST_SCHEMA`` (script/hassfest/manifest.py) and HACS's
``hacs.json`` and integration manifest requirements (hacs.xyz/docs/publish).
"""

from __future__ import annotations

import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

from homeassistant.const import __version__ as HA_VERSION
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
INTEGRATION = ROOT / "custom_components" / "compact_ai"

HASSFEST_KEYS = {
    "domain", "name", "integration_type", "config_flow", "mqtt", "zeroconf", "ssdp",
    "bluetooth", "homekit", "dhcp", "usb", "documentation", "issue_tracker", "quality_scale",
    "requirements", "dependencies", "after_dependencies", "codeowners", "loggers", "disabled",
    "iot_class", "single_config_entry", "import_executor", "version",
}  # fmt: skip
HASSFEST_REQUIRED = {"domain", "name", "documentation", "codeowners", "version"}
HACS_MANIFEST_REQUIRED = {
    "domain",
    "documentation",
    "issue_tracker",
    "codeowners",
    "name",
    "version",
}
HACS_JSON_KEYS = {
    "name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
    "homeassistant", "hacs", "persistent_directory", "render_readme",
}  # fmt: skip
IOT_CLASSES = {
    "assumed_state", "calculated", "cloud_polling", "cloud_push", "local_polling", "local_push",
}  # fmt: skip
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system"}


def test_manifest_keys_and_values() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    assert set(manifest) <= HASSFEST_KEYS
    assert set(manifest) >= HASSFEST_REQUIRED | HACS_MANIFEST_REQUIRED
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["iot_class"] in IOT_CLASSES
    assert manifest["integration_type"] == "service"
    assert manifest["integration_type"] in INTEGRATION_TYPES
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert manifest["documentation"].startswith("https://")
    assert manifest["issue_tracker"].startswith("https://")
    # onnxruntime has no musl wheel: requiring it would break HA OS installs.
    assert not any(req.startswith(("onnxruntime", "onnx")) for req in manifest["requirements"])
    assert any(re.fullmatch(r"ncnn==[\d.]+", req) for req in manifest["requirements"])
    # Keys are sorted the way hassfest writes them: domain, name, then alphabetical.
    assert list(manifest)[:2] == ["domain", "name"]
    assert list(manifest)[2:] == sorted(list(manifest)[2:])


def test_hacs_json_keys() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert set(hacs) <= HACS_JSON_KEYS
    assert hacs["name"] == "Compact AI"
    assert hacs["render_readme"] is True


def test_declared_support_is_what_ci_runs() -> None:
    """README's "Tested with" line lists the two test environments, this one among them.

    Each environment checks its own entry (the Home Assistant and Python running this test,
    and its harness pinned in its requirements file); hacs.json's minimum is the oldest.
    """
    readme = (ROOT / "README.md").read_text()
    line = next(line for line in readme.splitlines() if line.startswith("Tested with:"))
    tested = re.findall(r"Home Assistant (\d+\.\d+\.\d+) on Python (\d+\.\d+)", line)
    assert len(tested) == 2
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (HA_VERSION, python) in tested
    package = "pytest-homeassistant-custom-component"
    harness = f"{package}=={version(package)}"
    requirements = "requirements_test.txt" if python == "3.13" else "requirements_test_latest.txt"
    assert harness in (ROOT / requirements).read_text().splitlines()
    oldest = min((ha for ha, _ in tested), key=lambda v: tuple(map(int, v.split("."))))
    assert json.loads((ROOT / "hacs.json").read_text())["homeassistant"] == oldest


def test_brand_icon() -> None:
    with Image.open(INTEGRATION / "brand" / "icon.png") as icon:
        assert icon.format == "PNG"
        assert icon.size == (256, 256)


def test_translations_have_the_same_keys() -> None:
    def keys(tree: object, prefix: str = "") -> set[str]:
        if not isinstance(tree, dict):
            return {prefix}
        return set().union(*(keys(value, f"{prefix}/{key}") for key, value in tree.items()))

    english = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    chinese = json.loads((INTEGRATION / "translations" / "zh-Hans.json").read_text())
    assert keys(english) == keys(chinese)


def test_every_flow_error_is_translated() -> None:
    flow = [INTEGRATION / "config_flow.py", *sorted((INTEGRATION / "flow").glob("*.py"))]
    source = "\n".join(path.read_text() for path in flow)
    used = set(re.findall(r'errors\[(?:[A-Z_]+|"base")\] = "([a-z_]+)"', source))
    used |= set(re.findall(r'dict\.fromkeys\(\w+, "([a-z_]+)"\)', source))
    used |= set(re.findall(r'UserError\(\s*"([a-z_]+)"', source))
    assert used >= {"camera_not_found", "lock_required", "camera_or_photo", "photo_too_large"}
    english = json.loads((INTEGRATION / "translations" / "en.json").read_text())
    assert used <= set(english["options"]["error"])
    config_source = (INTEGRATION / "config_flow.py").read_text()
    config_errors = set(
        re.findall(r'"([a-z_]+)"', config_source.split("class CompactAIConfigFlow")[0])
    )
    assert {"camera_not_found", "backend_unavailable"} <= set(english["config"]["error"])
    assert config_errors  # the shared validator is defined before the config flow

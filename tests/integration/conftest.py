"""Fixtures for Home Assistant tests: real photos behind a real local_file camera."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from homeassistant import block_async_io
from homeassistant.core import HomeAssistant
from homeassistant.helpers import storage
from homeassistant.setup import async_setup_component
from PIL import Image, ImageFilter
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.compact_ai.const import CONF_CAMERAS, CONF_TIER
from custom_components.compact_ai.engine.runtime.availability import backend_importable
from tools.compact.evaluate.liveness_render import ASTRONAUT_KEYPOINTS, turn_head
from tools.compact.pack.sources import source_path

from .common import set_up_entry


@pytest.fixture(autouse=True)
def simulated_musl_install(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With COMPACT_AI_SIMULATE_MUSL=1, onnxruntime and onnx cannot be imported (as on HA OS).

    scripts/test runs the Home Assistant tests a second time this way, so no code path of
    the integration secretly needs onnxruntime or onnx: everything runs on ncnn.
    """
    if not os.environ.get("COMPACT_AI_SIMULATE_MUSL"):
        yield
        return
    for module in ("onnxruntime", "onnx"):
        monkeypatch.setitem(sys.modules, module, None)
    backend_importable.cache_clear()
    yield
    backend_importable.cache_clear()


@pytest.fixture(autouse=True)
def no_blocking_calls(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test in which Compact AI did blocking I/O inside the event loop.

    Home Assistant's own detection, including the file reads it leaves out in tests.
    """
    # Home Assistant has no public way to undo enable(): its list of patched calls does it.
    blocked = block_async_io._BLOCKED_CALLS  # noqa: SLF001
    with patch.object(block_async_io, "_IN_TESTS", False):
        block_async_io.enable()
    try:
        yield
    finally:
        for call in blocked.calls:
            setattr(call.object, call.function, call.original_func)
        blocked.calls.clear()
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    ours = "by custom integration 'compact_ai'"
    blocking = [r.getMessage() for r in records if ours in r.getMessage()]
    assert not blocking, blocking


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots through Home Assistant's extension (its serializers, the snapshots/ folder).

    The harness overrides syrupy's fixture the same way, but on newer harnesses (syrupy 6)
    syrupy's own plugin wins; a conftest fixture comes first on every harness.
    """
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture(scope="session")
def astronaut_photo() -> Path:
    """Return a real photo with one face (scikit-image's astronaut, public domain)."""
    return source_path("astronaut.png")


@pytest.fixture
async def camera_entity(hass: HomeAssistant, astronaut_photo: Path) -> str:
    """Set up a local_file camera showing the astronaut and return its entity id."""
    entry = MockConfigEntry(
        domain="local_file",
        title="Front door",
        options={"name": "Front door", "file_path": str(astronaut_photo)},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("camera.front_door") is not None
    return "camera.front_door"


@pytest.fixture
async def door_lock(hass: HomeAssistant) -> str:
    """Set up a template lock backed by an input_boolean and return its entity id."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"front_door_locked": {"initial": True}}}
    )
    boolean = {"entity_id": "input_boolean.front_door_locked"}
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "lock": [
                        {
                            "name": "Front door",
                            "state": "{{ is_state('input_boolean.front_door_locked', 'on') }}",
                            "lock": [{"action": "input_boolean.turn_on", "target": boolean}],
                            "unlock": [{"action": "input_boolean.turn_off", "target": boolean}],
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    assert hass.states.get("lock.front_door").state == "locked"
    return "lock.front_door"


@pytest.fixture
def photo_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Real photos (and edited copies) in a folder Home Assistant may read."""
    astronaut = Image.open(source_path("astronaut.png")).convert("RGB")
    astronaut.save(tmp_path / "astronaut.jpg", quality=95)
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp_path / "mirrored.jpg")
    astronaut.filter(ImageFilter.GaussianBlur(3)).save(tmp_path / "blurred.jpg")
    astronaut.resize((64, 64)).save(tmp_path / "tiny.jpg")
    # Her head turned 20 degrees by a depth model (parallax, unlike the stretched print)
    turned = turn_head(np.asarray(astronaut), ASTRONAUT_KEYPOINTS, 20.0)
    Image.fromarray(turned).save(tmp_path / "turned.jpg", quality=95)
    width, height = astronaut.size  # the flat photo stretched, as a print turned away looks
    astronaut.resize((int(width * 1.25), height)).save(tmp_path / "stretched.jpg", quality=95)
    Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB").save(tmp_path / "hanks.jpg")
    face = astronaut.crop((120, 30, 330, 240))
    pair = Image.new("RGB", (420, 210))
    pair.paste(face, (0, 0))
    pair.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (210, 0))
    pair.save(tmp_path / "pair.jpg", quality=95)
    Image.open(source_path("coffee.png")).convert("RGB").save(tmp_path / "coffee.jpg")
    # one of six people in insightface's t1.jpg: enrolled nowhere, far from Eileen and Tom
    group = Image.open(source_path("t1.jpg")).convert("RGB")
    group.crop((391, 218, 647, 474)).save(tmp_path / "stranger.jpg", quality=95)
    (tmp_path / "not_an_image.jpg").write_text("hello")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return tmp_path


@pytest.fixture
def private_config_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Give the test its own config folder: the harness's is shared, and TTS caches in it."""
    hass.config.config_dir = str(tmp_path / "config")


@pytest.fixture
async def entry(hass: HomeAssistant) -> MockConfigEntry:
    """A loaded Compact AI entry (balanced tier) without cameras, for the voice tests."""
    return await set_up_entry(hass, {CONF_TIER: "balanced"})


@pytest.fixture
async def loaded_entry(hass: HomeAssistant, camera_entity: str) -> MockConfigEntry:
    """A loaded Compact AI entry (balanced tier) watching the front door camera."""
    return await set_up_entry(hass, {CONF_TIER: "balanced", CONF_CAMERAS: [camera_entity]})


# Home Assistant's real storage (files under tmp_path), not the in-memory stand-in of
# pytest-homeassistant-custom-component; taken before any test replaces them. The harness
# replaces these private methods, so only they can be put back.
REAL_LOAD = storage.Store._async_load  # noqa: SLF001
REAL_WRITE = storage.Store._async_write_data  # noqa: SLF001


@pytest.fixture
def real_storage(hass: HomeAssistant, tmp_path: Path) -> Iterator[Path]:
    """Let the stores read and write real files; yield the .storage folder."""
    hass.config.config_dir = str(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(storage.Store, "_async_load", REAL_LOAD)
        patch.setattr(storage.Store, "_async_write_data", REAL_WRITE)
        yield tmp_path / ".storage"

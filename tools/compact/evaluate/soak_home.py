"""A real Home Assistant for the soak benchmark: two local_file cameras, a template lock, the door.

Not the test harness: Home Assistant's own core, registries and stores (real files in a
temporary config folder), set up the way ``bootstrap`` does it minus the default
integrations (frontend, http, ...), which need ports and packages a soak does not need. Its
event loop comes from Home Assistant's own loop policy (executor, exception handler), and
blocking calls inside the loop are detected as in a real install.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from homeassistant import block_async_io, bootstrap, loader, runner
from homeassistant.config_entries import SOURCE_USER, ConfigEntries, ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import ulid as ulid_util
from PIL import Image

from custom_components.compact_ai.const import (
    CONF_CAMERAS,
    CONF_TIER,
    CONF_UNLOCK,
    DEFAULT_UNLOCK,
    DOMAIN,
)
from tools.compact.evaluate.liveness_render import ASTRONAUT_KEYPOINTS, turn_head
from tools.compact.pack.sources import source_path

LOCK = "lock.front_door"
PERSON = "Eileen"
# What each camera shows in turn: the enrolled person, her head turned (liveness passes
# between the two), a stranger, and no face at all. The second camera starts half-way.
PHOTOS = ("astronaut.jpg", "turned.jpg", "stranger.jpg", "no_face.jpg")


def new_loop() -> asyncio.AbstractEventLoop:
    """Return an event loop made as Home Assistant makes its own."""
    create = getattr(runner, "create_event_loop", None)  # 2026.10 dropped the loop policy
    if create is not None:
        return create(debug=False)  # type: ignore[no-any-return]
    return runner.HassEventLoopPolicy(debug=False).new_event_loop()


def write_photos(folder: Path) -> list[Path]:
    """Write the real photos the cameras show (scikit-image and LFW samples)."""
    folder.mkdir(parents=True, exist_ok=True)
    astronaut = Image.open(source_path("astronaut.png")).convert("RGB")
    astronaut.save(folder / PHOTOS[0], quality=95)
    turned = turn_head(np.asarray(astronaut), ASTRONAUT_KEYPOINTS, 20.0)
    Image.fromarray(turned).save(folder / PHOTOS[1], quality=95)
    Image.open(source_path("Tom_Hanks_54745.png")).convert("RGB").save(folder / PHOTOS[2])
    Image.open(source_path("coffee.png")).convert("RGB").save(folder / PHOTOS[3])
    return [folder / name for name in PHOTOS]


async def start_home(config_dir: Path) -> HomeAssistant:
    """Start Home Assistant's core on the running loop with real storage in ``config_dir``."""
    hass = HomeAssistant(str(config_dir))
    hass.config.skip_pip = True
    loader.async_setup(hass)
    hass.config_entries = ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    await bootstrap.async_load_base_functionality(hass)
    assert await async_setup_component(hass, "homeassistant", {})
    await async_process_ha_core_config(hass, {})
    block_async_io.enable()
    await hass.async_start()
    return hass


async def add_entry(hass: HomeAssistant, domain: str, title: str, options: dict[str, Any]) -> str:
    """Add a config entry of ``domain`` with ``options``, set it up, and return its id."""
    entry = ConfigEntry(
        data={},
        discovery_keys=MappingProxyType({}),
        domain=domain,
        entry_id=ulid_util.ulid_now(),
        minor_version=1,
        options=options,
        source=SOURCE_USER,
        subentries_data=(),
        title=title,
        unique_id=None,
        version=1,
    )
    await hass.config_entries.async_add(entry)
    await hass.async_block_till_done()
    return entry.entry_id


async def add_lock(hass: HomeAssistant) -> None:
    """Add a template lock backed by an input_boolean (locked while it is on)."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"front_door_locked": {"initial": True}}}
    )
    boolean = {"entity_id": "input_boolean.front_door_locked"}
    lock = {
        "name": "Front door",
        "state": "{{ is_state('input_boolean.front_door_locked', 'on') }}",
        "lock": [{"action": "input_boolean.turn_on", "target": boolean}],
        "unlock": [{"action": "input_boolean.turn_off", "target": boolean}],
    }
    assert await async_setup_component(hass, "template", {"template": [{"lock": [lock]}]})
    await hass.async_block_till_done()


async def add_cameras(hass: HomeAssistant, photos: list[Path], count: int) -> list[str]:
    """Add ``count`` local_file cameras, each showing the first photo; return their ids."""
    hass.config.allowlist_external_dirs = {str(photos[0].parent)}
    registry = er.async_get(hass)
    cameras = []
    for number in range(1, count + 1):
        name = f"Door {number}"
        entry_id = await add_entry(
            hass, "local_file", name, {"name": name, "file_path": str(photos[0])}
        )
        [entity] = er.async_entries_for_config_entry(registry, entry_id)
        cameras.append(entity.entity_id)
    return cameras


@dataclass(frozen=True, slots=True)
class Door:
    """The Compact AI entry with the door on, and the entity its decisions appear on."""

    entry_id: str
    event_entity: str
    person_id: str


async def add_door(
    hass: HomeAssistant, cameras: list[str], enroll_photo: Path, liveness: bool
) -> Door:
    """Set up Compact AI, enroll the person, then turn the door on for every camera.

    Liveness is the caller's choice: the shipped threshold refuses the rendered head turn
    (as it refuses tilted prints), so with it on the door never opens and the unlock path
    (lock service, cooldown) would go unexercised.
    """
    entry_id = await add_entry(
        hass, DOMAIN, "Compact AI", {CONF_TIER: "balanced", CONF_CAMERAS: cameras}
    )
    await hass.services.async_call(
        DOMAIN, "enroll_face", {"name": PERSON, "files": [str(enroll_photo)]}, blocking=True
    )
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    [person_id] = entry.runtime_data.people.names()
    unlock = {
        **DEFAULT_UNLOCK,
        "enabled": True,
        "lock": LOCK,
        "unlock_cameras": cameras,
        "people": [person_id],
        "liveness": liveness,
    }
    hass.config_entries.async_update_entry(entry, options={**entry.options, CONF_UNLOCK: unlock})
    assert await hass.config_entries.async_reload(entry_id)
    await hass.async_block_till_done()
    event_entity = er.async_get(hass).async_get_entity_id("event", DOMAIN, f"{entry_id}_door")
    assert event_entity is not None, "the door event entity was not created"
    return Door(entry_id, event_entity, person_id)


async def stop_home(hass: HomeAssistant) -> None:
    """Stop Home Assistant (entries unload, stores are written)."""
    await hass.async_stop()

"""Compact AI: local, compressed face recognition and voice commands."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv, issue_registry as ir
from homeassistant.helpers.typing import ConfigType

from . import const
from .const import (
    BACKEND_AUTO,
    CONF_BACKEND,
    CONF_TIER,
    CONF_UNLOCK,
    DEFAULT_TIER,
    DOMAIN,
)
from .data import CompactAIConfigEntry, CompactAIRuntime
from .door import unlock_by_person_id
from .engine.errors import BackendUnavailableError, ManifestError, ModelIntegrityError
from .engine.face.recognizer import FaceRecognizer
from .engine.runtime.availability import resolve_backend
from .engine.runtime.pack import ModelPack
from .entity import async_remove_stale_cameras
from .face.last_seen import LastSeen
from .face.manager import FaceManager, ScanReport
from .face.people import People
from .face.services import async_setup_services
from .helpers.texts import async_load_texts
from .reconfigure import async_apply_door, async_options_updated, forget_door
from .scanning import ScanSchedule
from .voice.commands import VoiceCommands
from .voice.manager import VoiceManager
from .voice.services import async_setup_voice_services
from .voice.store import VoiceStore

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [Platform.EVENT, Platform.SENSOR, Platform.STT, Platform.WAKE_WORD]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
ISSUE_MODELS = "models_unusable"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once for the whole integration; load the logbook's words."""
    async_setup_services(hass)
    async_setup_voice_services(hass)
    await async_load_texts(hass)
    return True


def _load_recognizer(tier: str, backend: str) -> FaceRecognizer:
    """Read the pack and load the tier's face models (runs in an executor)."""
    return FaceRecognizer.load(ModelPack.load(const.PACK_DIR), tier, backend)


async def async_setup_entry(hass: HomeAssistant, entry: CompactAIConfigEntry) -> bool:
    """Set up Compact AI from a config entry."""
    choice = entry.options.get(CONF_BACKEND, BACKEND_AUTO)
    try:
        backend = await hass.async_add_executor_job(resolve_backend, choice)
    except BackendUnavailableError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="backend_unavailable",
            translation_placeholders={"backend": choice},
        ) from err
    tier = entry.options.get(CONF_TIER, DEFAULT_TIER)
    people = People(hass)
    await people.async_load()
    unlock: dict[str, Any] = entry.options.get(CONF_UNLOCK, {})
    if unlock and (by_id := unlock_by_person_id(unlock, people.names())) != unlock:
        unlock = by_id  # options of older versions named people by display name
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_UNLOCK: unlock}
        )

    recognizer: FaceRecognizer | None = None
    model_error: str | None = None
    try:
        recognizer = await hass.async_add_executor_job(_load_recognizer, tier, backend)
    except (ManifestError, ModelIntegrityError) as err:
        model_error = str(err)
        _LOGGER.error("The %s models cannot be used: %s", tier, err)
        ir.async_create_issue(
            hass,
            DOMAIN,
            ISSUE_MODELS,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_MODELS,
            translation_placeholders={"tier": tier, "error": model_error},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, ISSUE_MODELS)

    faces = FaceManager(hass, entry, recognizer, people)
    await faces.async_reembed_if_needed()
    await faces.async_tag_negatives()  # negatives of version 1 kept no source
    faces.sync_gallery()
    last_seen = LastSeen(hass)
    await last_seen.async_load()
    voice_store = VoiceStore(hass)
    await voice_store.async_load()
    voice = await VoiceManager.async_load(hass, tier, backend, voice_store.custom_set)
    commands = VoiceCommands(hass, entry, voice_store, voice, tier, backend)
    entry.runtime_data = runtime = CompactAIRuntime(
        backend=backend,
        tier=tier,
        people=people,
        faces=faces,
        door=None,
        model_error=model_error,
        voice=voice,
        commands=commands,
        scans=ScanSchedule(hass, entry, faces),
        last_seen=last_seen,
        options=dict(entry.options),
    )
    async_apply_door(hass, entry)
    commands.async_start()

    @callback
    def stop_training(_: Event) -> None:
        commands.trainer.async_cancel()

    @callback
    def flush_door() -> None:  # folded denials are told and the timer ends at unload
        if runtime.door is not None:
            runtime.door.async_flush()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, stop_training))
    entry.async_on_unload(flush_door)
    entry.async_on_unload(faces.async_add_listener(_door_listener(hass, entry)))
    entry.async_on_unload(faces.async_add_listener(last_seen.async_on_report))
    runtime.scans.async_apply(entry.options)
    entry.async_on_unload(runtime.scans.async_stop)
    entry.async_on_unload(entry.add_update_listener(async_options_updated))
    async_remove_stale_cameras(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


def _door_listener(hass: HomeAssistant, entry: CompactAIConfigEntry) -> Any:
    @callback
    def handle(report: ScanReport) -> None:
        door = entry.runtime_data.door
        if door is not None and report.scan is not None:
            entry.async_create_background_task(
                hass, door.async_handle(report), "compact_ai door decision"
            )

    return handle


async def async_unload_entry(hass: HomeAssistant, entry: CompactAIConfigEntry) -> bool:
    """Unload a config entry (a running voice training is stopped first)."""
    await entry.runtime_data.commands.async_shutdown()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: CompactAIConfigEntry) -> None:
    """Forget the removed entry's door state (cooldown and back-off)."""
    forget_door(hass, entry.entry_id)

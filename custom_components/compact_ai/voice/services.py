"""Services for the user's voice commands: phrases, recordings, training, reset (admins only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
import voluptuous as vol
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.core_config import Config
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service

from ..const import DOMAIN
from ..engine.errors import EngineError
from ..engine.voice.audio import read_wav
from ..errors import UserError
from ..face.services import loaded_entry, service_error
from ..helpers.files import open_allowed
from .commands import DEFAULT_CAPTURE_MINUTES, SOURCE_FILE, VoiceCommands
from .manager import MAX_SECONDS
from .store import MAX_PHRASE_LENGTH, MAX_RECORDINGS, VoiceError, normalize_phrase

ATTR_PHRASE = "phrase"
ATTR_FILE = "file"
ATTR_COUNT = "count"
ATTR_MINUTES = "minutes"

SERVICE_ADD_PHRASE = "add_voice_phrase"
SERVICE_REMOVE_PHRASE = "remove_voice_phrase"
SERVICE_ADD_RECORDING = "add_voice_recording"
SERVICE_RECORD_SAMPLES = "record_voice_samples"
SERVICE_TRAIN = "train_voice_commands"
SERVICE_RESET = "reset_voice_commands"

PHRASE = vol.All(cv.string, vol.Length(min=1, max=4 * MAX_PHRASE_LENGTH))
PHRASE_SCHEMA = vol.Schema({vol.Required(ATTR_PHRASE): PHRASE})
RECORDING_SCHEMA = vol.Schema(
    {vol.Required(ATTR_PHRASE): PHRASE, vol.Required(ATTR_FILE): cv.string}
)
RECORD_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_PHRASE): PHRASE,
        vol.Optional(ATTR_COUNT, default=3): vol.All(vol.Coerce(int), vol.Range(1, MAX_RECORDINGS)),
        vol.Optional(ATTR_MINUTES, default=DEFAULT_CAPTURE_MINUTES): vol.All(
            vol.Coerce(float), vol.Range(0.1, 60)
        ),
    }
)


def _commands(hass: HomeAssistant) -> VoiceCommands:
    entry = loaded_entry(hass)
    voice = entry.runtime_data.voice
    if not voice.available:
        raise service_error("voice_unavailable", error=voice.error or "")
    return entry.runtime_data.commands


def _phrase(call: ServiceCall) -> str:
    try:
        return normalize_phrase(call.data[ATTR_PHRASE])
    except UserError as err:
        raise service_error(err.key, **err.placeholders) from err


def _state(commands: VoiceCommands) -> dict[str, Any]:
    return {"state": commands.trainer.state.value, **commands.as_dict()}


def _handler(
    run: Callable[[VoiceCommands, ServiceCall], Awaitable[None]],
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """Wrap ``run``: find the voice commands, translate their errors, answer with the state."""

    async def handle(call: ServiceCall) -> ServiceResponse:
        commands = _commands(call.hass)
        try:
            await run(commands, call)
        except UserError as err:
            raise service_error(err.key, **err.placeholders) from err
        return _state(commands)

    return handle


async def _add_phrase(commands: VoiceCommands, call: ServiceCall) -> None:
    await commands.async_add_phrase(_phrase(call))


async def _remove_phrase(commands: VoiceCommands, call: ServiceCall) -> None:
    await commands.async_remove_phrase(_phrase(call))


async def _reset(commands: VoiceCommands, call: ServiceCall) -> None:
    await commands.async_reset()


async def _train(commands: VoiceCommands, call: ServiceCall) -> None:
    if not commands.custom:
        raise service_error("default_set_in_use")
    commands.trainer.async_request()


async def _add_recording(commands: VoiceCommands, call: ServiceCall) -> None:
    phrase, path = _phrase(call), call.data[ATTR_FILE]
    samples = await call.hass.async_add_executor_job(_read_recording, call.hass.config, path)
    try:
        await commands.async_add_recording(phrase, samples, SOURCE_FILE)
    except VoiceError as err:  # name the file the message is about
        raise VoiceError(err.key, **err.placeholders, path=path) from err
    commands.trainer.async_request()


def _read_recording(config: Config, path: str) -> np.ndarray:
    """Check and read the recording in one job (it may be long: only a window is read)."""
    try:
        with open_allowed(config, path) as handle:
            return read_wav(handle, MAX_SECONDS).samples
    except (EngineError, OSError) as err:
        raise service_error("bad_audio", path=path, error=str(err)) from err


async def _record_samples(commands: VoiceCommands, call: ServiceCall) -> None:
    commands.async_start_capture(_phrase(call), call.data[ATTR_COUNT], call.data[ATTR_MINUTES])


@callback
def async_setup_voice_services(hass: HomeAssistant) -> None:
    """Register the voice command services."""
    for name, run, schema in (
        (SERVICE_ADD_PHRASE, _add_phrase, PHRASE_SCHEMA),
        (SERVICE_REMOVE_PHRASE, _remove_phrase, PHRASE_SCHEMA),
        (SERVICE_ADD_RECORDING, _add_recording, RECORDING_SCHEMA),
        (SERVICE_RECORD_SAMPLES, _record_samples, RECORD_SCHEMA),
        (SERVICE_TRAIN, _train, vol.Schema({})),
        (SERVICE_RESET, _reset, vol.Schema({})),
    ):
        async_register_admin_service(
            hass, DOMAIN, name, _handler(run), schema, SupportsResponse.OPTIONAL
        )

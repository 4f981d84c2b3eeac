"""Errors raised by the engine; each carries a message fit for a log or a user."""


class EngineError(Exception):
    """Base class of every engine error."""


class BackendUnavailableError(EngineError):
    """The requested inference backend cannot be imported on this machine."""


class ManifestError(EngineError):
    """The model pack's manifest is missing, unreadable or does not follow the schema."""


class ModelIntegrityError(EngineError):
    """A model file is missing, truncated or does not match its sha256 in the manifest."""


class ImageDecodeError(EngineError):
    """Image bytes are empty, corrupt, truncated, too small or too large to decode safely."""


class AudioFormatError(EngineError):
    """Audio bytes are not a WAV file the engine can decode (non-PCM, corrupt, truncated)."""


class InferenceError(EngineError):
    """The inference backend cannot load or run a model (bad file, unsupported layer)."""


class SynthesisError(EngineError):
    """A text-to-speech engine is missing, fails or gives no usable audio."""


class TrainingError(EngineError):
    """A command set cannot be trained from the phrases, voices and recordings given."""

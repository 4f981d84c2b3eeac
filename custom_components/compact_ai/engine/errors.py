"""Errors raised by the engine; each carries a message fit for a log or a user."""


class EngineError(Exception):
    """Base class of every engine error."""


class BackendUnavailableError(EngineError):
    """The requested inference backend cannot be imported on this machine."""

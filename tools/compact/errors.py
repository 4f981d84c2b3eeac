"""Errors of the toolkit."""


class ToolError(Exception):
    """A failure the user can act on; the CLI prints it without a traceback."""

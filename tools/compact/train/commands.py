"""Voice command sets for ``train-commands`` and ``merge-commands``.

The training itself lives in the engine's ``voice/training`` package, so that Home Assistant
retrains with exactly the same code; here are only the command-line inputs and the merge.
Merging averages sets of the same phrases trained with different seeds (each on its own
synthesized data): one such set swings by several points on real voices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from custom_components.compact_ai.engine.errors import EngineError
from custom_components.compact_ai.engine.voice.commands import UNKNOWN, CommandSet
from custom_components.compact_ai.engine.voice.training import merge_heads, write_command_set
from tools.compact.errors import ToolError


def parse_phrases(text: str) -> tuple[str, ...]:
    """Return the comma-separated phrases of ``text``, lower case, each once, in order."""
    phrases = tuple(dict.fromkeys(p.strip().lower() for p in text.split(",") if p.strip()))
    if not phrases:
        raise ToolError("--phrases needs at least one phrase")
    if UNKNOWN in phrases:
        raise ToolError(f"{UNKNOWN} is reserved")
    return phrases


@dataclass(frozen=True)
class Merged:
    """What ``merge_command_sets`` wrote."""

    members: int
    sets: int
    threshold: float


def merge_command_sets(folders: list[Path], out: Path, command: str) -> Merged:
    """Average the heads of the sets in ``folders`` into a new set at ``out``.

    The threshold is the sets' mean; ``command`` (the command line that merged) and every
    set's own training notes go into the manifest.
    """
    try:
        sets = [CommandSet.load(folder) for folder in folders]
        if len({command_set.phrases for command_set in sets}) != 1:
            raise ToolError("the command sets must have the same phrases in the same order")
        head = merge_heads([command_set.head for command_set in sets])
    except EngineError as err:
        raise ToolError(str(err)) from err
    threshold = round(sum(command_set.threshold for command_set in sets) / len(sets), 3)
    training = {
        "members": head.members,
        "merged": [command_set.manifest.get("training", {}) for command_set in sets],
        "command": command,
    }
    write_command_set(out, sets[0].phrases, head, threshold, training)
    return Merged(head.members, len(sets), threshold)

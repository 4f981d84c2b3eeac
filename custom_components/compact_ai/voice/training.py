"""Training the user's command set on the Home Assistant host (runs in an executor).

The plan is smaller than the toolkit's (which trains the shipped set in 6–18 min on two
cores): :data:`SIZE` keeps a retrain of the 14 default phrases to a few minutes there
(README, "Voice commands"). The set is written to a scratch folder next to the target,
verified by loading it, and only then put in place, so a failed or cancelled run leaves the
previous set untouched.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .. import const
from ..engine.runtime.backend import load_model
from ..engine.runtime.pack import ModelPack
from ..engine.voice.commands import CommandSet
from ..engine.voice.speech import SpeechEmbedder
from ..engine.voice.training import Plan, SpokenClip, train_command_set
from ..engine.voice.tts import available_voices

MEL_TASK: Final = "speech_mel"
EMBEDDING_TASK: Final = "speech_embedding"


@dataclass(frozen=True, slots=True)
class TrainingSize:
    """How much speech to synthesize per training run, and which voices to leave out."""

    per_phrase: int = 120
    negatives: int = 1200
    epochs: int = 30
    threads: int = 2  # synthesizer processes at a time (inference uses one thread)
    chunk: int = 32  # clips between progress reports: a cancel waits for at most this many
    hold_out: tuple[str, ...] = ()


SIZE = TrainingSize()
# Wall-clock seconds per synthesized clip with SIZE on two x86 cores shared with other work
# (the 14 default phrases, 2,880 clips, took 394 s); a Raspberry Pi 4 is several times slower.
SECONDS_PER_CLIP: Final = 0.14


def estimated_minutes(phrases: int) -> int:
    """Return about how many minutes training ``phrases`` phrases takes on a 2-core PC."""
    clips = SIZE.per_phrase * phrases + SIZE.negatives * 1.1  # plus non-speech sounds
    return max(1, math.ceil(clips * SECONDS_PER_CLIP / 60))


class TrainingCancelled(Exception):
    """The integration unloaded or a newer request replaced this run."""


@dataclass(frozen=True, slots=True)
class TrainingRequest:
    """Everything one run needs, copied from the store when it starts."""

    tier: str
    backend: str
    phrases: tuple[str, ...]
    recordings: dict[str, list[Path]]
    out: Path
    use_tts: bool  # the host's own synthesizers
    spoken: tuple[SpokenClip, ...] = ()  # from Home Assistant's TTS entities


def tts_voice_count() -> int:
    """Return how many synthesizer voices this host has (runs in an executor)."""
    return len(available_voices())


def load_embedder(tier: str, backend: str, threads: int = 1) -> tuple[SpeechEmbedder, str]:
    """Load the tier's speech models; return them and an id naming their files."""
    pack = ModelPack.load(const.PACK_DIR)
    mel, embedding = pack.model(tier, MEL_TASK), pack.model(tier, EMBEDDING_TASK)
    embedder = SpeechEmbedder(
        load_model(pack, mel, backend, threads=threads),
        load_model(pack, embedding, backend, threads=threads),
    )
    return embedder, speech_models_id(pack, tier)


def speech_models_id(pack: ModelPack, tier: str) -> str:
    """Return an id of the tier's speech model files (the same on every backend)."""
    hashes = sorted(
        file.sha256
        for task in (MEL_TASK, EMBEDDING_TASK)
        for files in pack.model(tier, task).files.values()
        for file in files
    )
    return "+".join(item[:12] for item in hashes)


def train(
    request: TrainingRequest, cancel: threading.Event, report: Callable[[float], None]
) -> dict[str, Any]:
    """Train and install the command set of ``request``; return the training summary.

    ``report`` gets the fraction done; setting ``cancel`` stops the run with
    :class:`TrainingCancelled` at the next progress step.
    """

    def progress(fraction: float) -> None:
        if cancel.is_set():
            raise TrainingCancelled
        report(fraction)

    embedder, _ = load_embedder(request.tier, request.backend)
    request.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="training-", dir=request.out.parent) as tmp:
        work = Path(tmp)
        for phrase, files in request.recordings.items():
            (work / "recordings" / phrase).mkdir(parents=True)
            for file in files:
                shutil.copyfile(file, work / "recordings" / phrase / file.name)
        plan = Plan(
            phrases=request.phrases,
            per_phrase=SIZE.per_phrase,
            negatives=SIZE.negatives,
            hold_out=SIZE.hold_out,
            recordings=work / "recordings" if request.recordings else None,
            epochs=SIZE.epochs,
            threads=SIZE.threads,
            chunk=SIZE.chunk,
            use_tts=request.use_tts,
        )
        summary = train_command_set(plan, work / "set", embedder, progress, spoken=request.spoken)
        CommandSet.load(work / "set")  # what was written can be read back and verified
        progress(1.0)
        old = work / "old"
        if request.out.exists():
            request.out.rename(old)
        (work / "set").rename(request.out)
    return summary

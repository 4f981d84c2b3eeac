"""``commands-recordings``: what a few real recordings per phrase add, against a plain baseline.

Protocol (issue 21): the speakers of the phrase clips in ``--audio`` (Speech Commands names
files ``<speaker>_nohash_<n>.wav``) are sorted by id and split in half. Up to ``--per-phrase``
clips per phrase from the first half are the user's recordings; the phrase clips of the
second half, every clip of the other words and 1 s cuts of ``--silence`` are the test, so no
test speaker was recorded. ``--folds 2`` also swaps the halves and pools both tests (twice the
command clips; the other words and noise are test in both folds). Every row is trained from
the same features in one run:

- text only: the host training plan (synthesized speech), as Home Assistant trains it;
- text + recordings: the same plus the recordings (each with its augmented copies);
- recordings only: recordings plus non-speech sounds (Home Assistant OS);
- logistic regression: a plain multinomial regression on the same pooled features of the
  synthetic clips and the recordings (with their augmented copies), argmax over all classes;
- with ``--tts-voices N``: the Home Assistant TTS path. N local voices (one per voice family,
  spread over the engines) stand in for the voices of a user's TTS entity and say what
  :mod:`...voice.ha_tts` asks an entity for (each phrase once, plus other words), learnt with
  augmented copies: TTS voices + recordings and TTS voices only (Home Assistant OS), and text
  + TTS voices + recordings (a host with synthesizers and a TTS entity). ``--tts-speakers K``
  takes K voices of each family, as the speakers of a multi-speaker voice (Piper's) would be.

Training noise is generated (never the evaluation noise). Synthetic features are cached in
``--cache`` so a second run only retrains the heads. Options: ``evaluate/cli.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custom_components.compact_ai.engine.voice.audio import speech_segment
from custom_components.compact_ai.engine.voice.commands import (
    SILENCE,
    UNKNOWN,
    CommandHead,
    CommandSet,
    command_window,
    decide,
    pool,
)
from custom_components.compact_ai.engine.voice.speech import SpeechEmbedder
from custom_components.compact_ai.engine.voice.training import Plan
from custom_components.compact_ai.engine.voice.training.command_set import fit_head, select_voices
from custom_components.compact_ai.engine.voice.training.features import (
    Dataset,
    add_clips,
    build_dataset,
)
from custom_components.compact_ai.engine.voice.training.texts import (
    spoken_negatives,
    spoken_texts,
    spread,
    voice_families,
)
from custom_components.compact_ai.engine.voice.tts import NoiseSource, Request, synthesize
from tools.compact.errors import ToolError
from tools.compact.evaluate.commands import (
    Clip,
    labelled_clips,
    load_speech_embedder,
    silence_clips,
)

PHRASES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def speaker(clip: Clip) -> str:
    """Return the speaker id of a Speech Commands clip (``label/<speaker>_nohash_<n>.wav``)."""
    return clip.source.split("/")[-1].split("_")[0]


def split(
    clips: list[Clip], phrases: tuple[str, ...], per_phrase: int, fold: int = 0
) -> tuple[list[Clip], list[Clip]]:
    """Return (recordings, test): see the module docstring (fold 1 swaps the halves)."""
    speakers = sorted({speaker(c) for c in clips if c.truth in phrases})
    half = len(speakers) // 2
    recorders = set(speakers[:half] if fold == 0 else speakers[half:])
    recordings: list[Clip] = []
    for phrase in phrases:
        mine = [c for c in clips if c.truth == phrase and speaker(c) in recorders]
        recordings += mine[:per_phrase]
    test = [c for c in clips if c.truth not in phrases or speaker(c) not in recorders]
    return recordings, test


def test_features(
    embedder: SpeechEmbedder, clips: list[Clip], seen: dict[int, np.ndarray | None]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Featurize the test clips as recognition does; return features, truths, silence truths.

    ``seen`` keeps each clip's features (None: no speech), so a clip tested in both folds is
    featurized once.
    """
    rows, truths, silent = [], [], []
    for clip in clips:
        if id(clip) not in seen:
            segment = speech_segment(clip.samples)
            window = None if segment is None else command_window(clip.samples, segment)
            seen[id(clip)] = None if window is None else pool(embedder.embeddings(window[None]))
        row = seen[id(clip)]
        if row is None:
            silent.append(clip.truth)
            continue
        rows.append(row)
        truths.append(clip.truth)
    return np.concatenate(rows), truths, silent


def synthetic(plan: Plan, embedder: SpeechEmbedder, cache: Path | None) -> Dataset:
    """Return the synthetic dataset of ``plan`` (from ``cache`` when it was built before)."""
    if cache is not None and cache.exists():
        saved = np.load(cache)
        return Dataset(list(saved["x"]), list(saved["y"]), [str(f) for f in saved["f"]])
    data = build_dataset(plan, embedder, select_voices(plan.hold_out), NoiseSource())
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        x, y = data.arrays()
        np.savez(cache, x=x, y=y, f=np.asarray(data.families))
    return data


def logistic_regression(
    x: np.ndarray, y: np.ndarray, classes: int, epochs: int = 300, decay: float = 1e-3
) -> CommandHead:
    """Fit a class-balanced multinomial logistic regression (full-batch Adam), as a head.

    Expressed as a :class:`CommandHead` whose hidden layer is the identity on the inputs
    (ReLU of the standardised features and of their negation), so it scores like any head.
    """
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    xs = ((x - mean) / scale).astype(np.float32)
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    rows = (len(y) / (classes * np.maximum(counts, 1.0)))[y][:, None] / len(y)
    onehot = np.eye(classes, dtype=np.float32)[y]
    w, b = np.zeros((x.shape[1], classes), np.float32), np.zeros(classes, np.float32)
    mw, vw, mb, vb = (np.zeros_like(a) for a in (w, w, b, b))
    for step in range(1, epochs + 1):
        logits = xs @ w + b
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        d = (p - onehot) * rows
        gw, gb = xs.T @ d + decay * w, d.sum(axis=0)
        for m, v, g, param in ((mw, vw, gw, w), (mb, vb, gb, b)):
            m[:] = 0.9 * m + 0.1 * g
            v[:] = 0.999 * v + 0.001 * g**2
            param -= 0.01 * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    eye = np.eye(x.shape[1], dtype=np.float32)
    return CommandHead(
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        w0=np.concatenate([eye, -eye], axis=1)[None],
        b0=np.zeros((1, 2 * x.shape[1]), np.float32),
        w1=np.concatenate([w, -w], axis=0)[None],
        b1=b[None],
    )


def decisions(
    command_set: CommandSet, x: np.ndarray, truths: list[str], silent: list[str]
) -> list[tuple[str, str]]:
    """Return (truth, what ``command_set`` decided) for every test clip."""
    probabilities = command_set.head.probabilities(x)
    if command_set.threshold <= 0:  # argmax over every class, unknown included
        labels = [command_set.labels[int(np.argmax(p))] for p in probabilities]
    else:
        labels = [decide(command_set, p)[0] for p in probabilities]
    return list(zip(truths, labels, strict=True)) + [(t, SILENCE) for t in silent]


def score(pairs: list[tuple[str, str]], phrases: tuple[str, ...]) -> dict[str, Any]:
    """Return command accuracy, unknown and noise rejection of (truth, decision) pairs."""
    commands = [t == g for t, g in pairs if t in phrases]
    per_phrase = {p: float(np.mean([g == p for t, g in pairs if t == p])) for p in phrases}
    return {
        "commands": float(np.mean(commands)),
        "unknown_rejected": float(np.mean([g not in phrases for t, g in pairs if t == UNKNOWN])),
        "noise_rejected": float(np.mean([g not in phrases for t, g in pairs if t == SILENCE])),
        "command_clips": len(commands),
        "weakest": min(per_phrase, key=lambda p: per_phrase[p]),
        "weakest_rate": min(per_phrase.values()),
    }


def tts_voices(
    plan: Plan, embedder: SpeechEmbedder, count: int, seed: int, speakers: int = 1
) -> Dataset:
    """Return what Home Assistant TTS voices give training (local voices stand in).

    ``count`` voice families spread over the engines, and ``speakers`` voices of each (an
    espeak-ng accent has about a hundred variants, like a multi-speaker Piper voice).
    """
    families = voice_families(select_voices(plan.hold_out))
    picked = [
        voice
        for family in spread(list(families), count)
        for voice in spread(families[family], speakers)
    ]
    negatives = spoken_negatives(len(plan.phrases), len(picked))
    said = [
        (Request(voice, text), label, f"tts.stand_in:{voice.id}")
        for index, voice in enumerate(picked)
        for text, label in spoken_texts(plan.phrases, index, negatives)
    ]
    speech = synthesize([request for request, _, _ in said], workers=plan.threads)
    data = Dataset()
    rng = np.random.default_rng(seed)
    for family in dict.fromkeys(family for _, _, family in said):
        clips = [(s, label) for s, (_, label, f) in zip(speech, said, strict=True) if f == family]
        add_clips(clips, embedder, NoiseSource(), rng, data, family)
    return data


def rows(
    plan: Plan, text: Dataset, real: Dataset, spoken: Dataset | None = None
) -> list[tuple[str, CommandSet]]:
    """Train every row's head; return (name, command set) pairs."""
    classes = len(plan.phrases) + 1

    def joined(*parts: Dataset) -> Dataset:
        return Dataset(
            [f for d in parts for f in d.features],
            [label for d in parts for label in d.labels],
            [f for d in parts for f in d.families],
        )

    def command_set(name: str, head: CommandHead, threshold: float) -> tuple[str, CommandSet]:
        return name, CommandSet(name, plan.phrases, threshold, head, {})

    def mlp(name: str, data: Dataset) -> tuple[str, CommandSet]:
        head, threshold, _, _ = fit_head(plan, data)
        return command_set(name, head, threshold)

    keep = [i for i, family in enumerate(text.families) if family == "sound"]
    sounds = Dataset(
        [text.features[i] for i in keep], [text.labels[i] for i in keep], ["sound"] * len(keep)
    )
    both = joined(text, real)
    out = [mlp("text only (MLP)", text)]
    out.append(mlp("text + recordings", both))
    out.append(mlp("recordings only", joined(sounds, real)))
    x, y = both.arrays()
    out.append(command_set("LR, text + recordings", logistic_regression(x, y, classes), 0.0))
    x, y = joined(sounds, real).arrays()
    out.append(command_set("LR, recordings only", logistic_regression(x, y, classes), 0.0))
    if spoken is not None:
        out.append(mlp("TTS voices + recordings (HA OS)", joined(spoken, sounds, real)))
        out.append(mlp("TTS voices only (HA OS)", joined(spoken, sounds)))
        out.append(mlp("text + TTS voices + recordings", joined(text, spoken, real)))
    return out


@dataclass(frozen=True)
class Options:
    """What one ``commands-recordings`` run measures (see the module docstring)."""

    audio: tuple[Path, ...]
    silence: tuple[Path, ...] = ()
    per_phrase: int = 5  # recordings per phrase
    synthetic: int = 0  # synthetic clips per phrase (0: the host plan's)
    negatives: int = 0  # synthetic negatives (0: the host plan's)
    seed: int = 0
    threads: int = 2
    cache: Path | None = None  # synthetic features (.npz)
    tier: str = "reference"
    pack: Path | None = None
    tts_voices: int = 0  # stand-ins for a Home Assistant TTS entity's voices (0: no such rows)
    tts_speakers: int = 1  # voices of each stand-in family (a multi-speaker voice's speakers)
    folds: int = 1  # 2: also the halves swapped, both tests pooled

    def __post_init__(self) -> None:
        """Refuse a fold count the split does not have."""
        if self.folds not in (1, 2):
            raise ToolError(f"--folds is 1 or 2 (the two halves of the speakers), not {self.folds}")


def run(options: Options) -> dict[str, Any]:
    """Train every row from one set of features and score it on the held-out speakers."""
    # The host plan, as Home Assistant trains (imported here: it pulls in the integration).
    from custom_components.compact_ai.voice.training import SIZE

    started = time.perf_counter()
    plan = Plan(
        phrases=PHRASES,
        per_phrase=options.synthetic or SIZE.per_phrase,
        negatives=options.negatives or SIZE.negatives,
        epochs=SIZE.epochs,
        threads=options.threads,
        chunk=SIZE.chunk,
        seed=options.seed,
    )
    embedder = load_speech_embedder(options.tier, options.pack, threads=1)
    clips: list[Clip] = []
    for folder in options.audio:
        clips += labelled_clips(folder, PHRASES)
    for folder in options.silence:
        clips += silence_clips(folder)
    folds = [split(clips, PHRASES, options.per_phrase, fold) for fold in range(options.folds)]
    if not all(recorded for recorded, _ in folds):
        raise ToolError("no phrase clips to record from in --audio")
    text = synthetic(plan, embedder, options.cache)
    built = time.perf_counter()
    spoken = (
        tts_voices(plan, embedder, options.tts_voices, options.seed, options.tts_speakers)
        if options.tts_voices
        else None
    )
    pooled: dict[str, tuple[list[float], list[tuple[str, str]]]] = {}
    index = {phrase: i for i, phrase in enumerate(PHRASES)}
    seen: dict[int, np.ndarray | None] = {}
    for recorded, test in folds:
        real = Dataset()
        rng = np.random.default_rng(options.seed)
        clips_of = [(c.samples, index[c.truth]) for c in recorded]
        add_clips(clips_of, embedder, NoiseSource(), rng, real)
        x, truths, silent = test_features(embedder, test, seen)
        for name, command_set in rows(plan, text, real, spoken):
            thresholds, pairs = pooled.setdefault(name, ([], []))
            thresholds.append(command_set.threshold)
            pairs += decisions(command_set, x, truths, silent)
    results = [
        {"row": name, "threshold": float(np.mean(t)), "thresholds": t, **score(pairs, PHRASES)}
        for name, (t, pairs) in pooled.items()
    ]
    return {
        "folds": options.folds,
        "recordings": sum(len(recorded) for recorded, _ in folds),
        "test_commands": results[0]["command_clips"],
        "synthetic_clips": len(text.labels),
        "tts_voice_clips": 0 if spoken is None else len(spoken.labels),
        "features_seconds": round(built - started, 1),
        "heads_seconds": round(time.perf_counter() - built, 1),
        "rows": results,
    }


def report_lines(summary: dict[str, Any]) -> list[str]:
    """Return the table of a :func:`run` summary."""
    lines = [
        f"{summary['recordings']} recordings, {summary['test_commands']} test command clips, "
        f"{summary['synthetic_clips']} synthetic clips, {summary['folds']} fold(s)",
        f"{'row':<42}{'commands':>9}{'unknown':>9}{'noise':>8}  threshold  weakest",
    ]
    for r in summary["rows"]:
        lines.append(
            f"{r['row']:<42}{100 * r['commands']:8.1f}%{100 * r['unknown_rejected']:8.1f}%"
            f"{100 * r['noise_rejected']:7.1f}%  {r['threshold']:9.3f}  "
            f"{r['weakest']} {100 * r['weakest_rate']:.0f}%"
        )
    return lines

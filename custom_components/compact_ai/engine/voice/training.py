"""Train a voice command set from synthesized speech (plus the user's own clips).

Used by ``python -m tools.compact train-commands`` and by Home Assistant when phrases change.
Every phrase is spoken by every local TTS voice family (:mod:`.tts`) with varied
rate, pitch, speed, room and background noise. The ``_unknown_`` class learns from other
words (common English words, parts of multi-word phrases, near-phrases such as "open the
door"), ordinary sentences and non-speech sounds. Clips go through the engine's own path
(voice activity -> 2 s window -> speech embeddings -> pooling), so training sees exactly what
recognition will see.

The threshold is calibrated on voice families held out of a first training run, as the
score that lets :attr:`Plan.accept` of their phrase clips through (real voices score lower
than any synthetic one, so the ``_unknown_`` class does the rejecting); the shipped head is
then retrained on all voices. The head averages a few MLPs trained from different seeds.
Real recordings (``--recordings DIR/<phrase>/*.wav``) are added with augmented copies. Real
speech from the evaluation data is never used; noise recordings are used only when a noise
folder is given, and the manifest lists them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineError, TrainingError
from ..runtime.pack import sha256_of
from .audio import (
    TARGET_RATE,
    read_wav,
    resample,
    speech_segment,
    to_int16,
)
from .commands import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    UNKNOWN,
    WINDOW_SAMPLES,
    CommandHead,
    command_window,
    pool,
)
from .speech import SpeechEmbedder
from .tts import (
    NoiseSource,
    Prosody,
    Request,
    Voice,
    available_voices,
    colored_noise,
    convolve,
    mix,
    perturb_speed,
    room_impulse,
    synthesize,
)

DEFAULT_PHRASES = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "unlock the door", "lock the door", "lights on", "lights off",
)  # fmt: skip
WEIGHTS_NAME = "head.npz"
DEFAULT_THRESHOLD = 0.5  # when there is nothing to calibrate on (recordings only)
MIN_THRESHOLD, MAX_THRESHOLD = 0.2, 0.9  # below 0.2 noise starts to pass as commands
# Speed perturbation up to x1.25 (log-uniform both ways): formants move like from a long adult
# to a child vocal tract. Voice diversity is what carries TTS training over to real voices.
SPEED_RANGE = float(np.log(1.25))


def _words(text: str, sep: str | None = None) -> list[str]:
    return [item.strip() for item in text.split(sep) if item.strip()]


# Common English words. Phrases and their homophones are dropped per command set (HOMOPHONES).
# Close near-misses ("yet", "lift", "stock") are not negatives: on real voices they taught the
# head to reject the phrases themselves (command accuracy fell ~6 points). The Speech Commands
# auxiliary words (numbers, "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila",
# "tree", "wow") and their homophones are left out on purpose, so that evaluating on them
# measures the rejection of words never seen in training.
COMMON_WORDS = _words("""
about after again air all also always and animal another answer any apple area around ask
away baby back bad ball bank because been before begin behind best better between big black
blue boat body book both box boy bread bring brother brown build busy but buy call came can
car card care carry chair change child city class clean clock close cold color come cook
could country course cup cut dark day dear did different dinner does done draw dream drink
drive each early earth easy eat egg end enough even evening every eye face fact fall family
far farm fast father feel few field fill find fine fire first fish floor flower fly follow
food foot friend from front full game garden girl give glass good got great green ground
group grow had hair half hand hard has have he head hear heart heavy help her here high hill
him his hold home hope horse hot hour how hundred idea if important inside into island just
keep kind king kitchen knew land large last late laugh learn leave less letter life like
line list listen little live long look lot love made make man many map may mean men milk
minute money month moon more morning most mother mountain move much music must my name near
need never next nice number ocean often old only open order other our out over page paper
park part party pass people picture piece place plan plant play please point power pretty
problem pull push put question quick quiet rain read ready real red remember rest river road
rock room round run said same saw say school sea second see seem sentence set she ship short
should show side simple sing sister sit sleep slow small snow some song soon sound space
speak spring stand star start state stay still story street strong study such summer sun
sure table take talk teacher tell than thank that them then there these they thing think
this those thought through time today together toward town train travel true try turn under
until use usually very voice wait walk want warm was watch water way we weather week well
went were what wheel when where which while white who why will wind window winter wish with
without woman wonder wood word work world would year yellow young your
lock unlock door lights lamp locker dock rocket pocket blocks clock
""")
HOMOPHONES = {"no": ("know",), "right": ("write", "rite")}
NEAR_PHRASES = _words(
    """
open the door|close the door|unlock the car|lock the window|check the door|the door|lights out|
lights dim|the lights|unlock it|lock it|turn the lights|door lock|lock the|unlock the|
the lights are bright|lock the gate|a door|lights please|light the fire
""".replace("\n", ""),
    "|",
)
SENTENCES = _words(
    """
what time is it|how is the weather today|I would like a cup of coffee|can you play some music|
the children are playing in the garden|please close the window|where are my keys|
it is raining outside|remind me to call my mother|what is for dinner|set a timer|
the kitchen is very warm|thank you very much|good morning everyone|I am going to the store|
she reads a book every evening|this is a beautiful day|we should leave early tomorrow|
the train was late again|my brother lives in the city|the water is too cold|
have you seen my phone|let me think about it|that sounds like a good idea|
the meeting starts at noon|he forgot his umbrella|we need more milk|
the garden needs water|the movie was very long|can you help me with this|
I will be home soon|the birds are singing|do you want some tea|it is getting dark|
please be quiet|I like this song|the baby is sleeping|where is the remote|
the car is in the garage|tomorrow will be sunny
""".replace("\n", ""),
    "|",
)


Progress = Callable[[float], None]


@dataclass(frozen=True)
class Plan:
    """How much to synthesize; the defaults train the shipped default command set."""

    phrases: tuple[str, ...]
    per_phrase: int = 240
    negatives: int = 2400
    seed: int = 0
    hold_out: tuple[str, ...] = ()
    recordings: Path | None = None
    noise: Path | None = None
    kokoro: Path | None = None  # folder of the Kokoro TTS files (adds its voices)
    hidden: int = 128
    epochs: int = 30
    members: int = 3  # MLPs averaged: single ones swing by several points on real voices
    accept: float = 0.97  # share of unseen voices' phrase clips the threshold lets through
    threads: int = 2
    use_tts: bool = True  # False: learn from the recordings only (a host without a synthesizer)
    chunk: int = 256  # clips synthesized between progress reports (and chances to cancel)


@dataclass
class Dataset:
    """Pooled features with their label index and the voice family that spoke them."""

    features: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def arrays(self, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (features, labels), optionally only the rows of a boolean ``mask``."""
        x, y = np.stack(self.features), np.asarray(self.labels)
        return (x, y) if mask is None else (x[mask], y[mask])


# --------------------------------------------------------------------------- what to say


def negative_words(phrases: Sequence[str]) -> list[str]:
    """Return the single-word negatives: common words minus phrases and their homophones."""
    banned = set(phrases)
    for phrase in phrases:
        banned.update(HOMOPHONES.get(phrase, ()))
    return [word for word in dict.fromkeys(COMMON_WORDS) if word not in banned]


def phrase_parts(phrases: Sequence[str]) -> list[str]:
    """Return contiguous parts of multi-word phrases that are not phrases themselves."""
    parts = set()
    for phrase in phrases:
        words = phrase.split()
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                parts.add(" ".join(words[i:j]))
    return sorted(parts - set(phrases) - {"the"})


def negative_texts(phrases: Sequence[str]) -> list[str]:
    """Return multi-word negatives: near-phrases and sentences that are not phrases."""
    return [text for text in NEAR_PHRASES + SENTENCES if text not in phrases]


def _families(voices: Sequence[Voice]) -> dict[str, list[Voice]]:
    families: dict[str, list[Voice]] = {}
    for voice in voices:
        families.setdefault(voice.family, []).append(voice)
    return families


def _prosody(rng: np.random.Generator) -> Prosody:
    return Prosody(rate=float(rng.uniform(0.75, 1.3)), pitch=float(rng.uniform(0.75, 1.35)))


def _requests(
    rng: np.random.Generator, items: Sequence[tuple[str, int]], voices: Sequence[Voice]
) -> list[tuple[Request, int]]:
    """Give every (text, label) a voice: families take turns, a random voice within each."""
    families = list(_families(voices).values())
    order = rng.permutation(len(items))
    planned = []
    for turn, index in enumerate(order):
        text, label = items[index]
        family = families[turn % len(families)]
        voice = family[int(rng.integers(len(family)))]
        planned.append((Request(voice, text, _prosody(rng)), label))
    return planned


def plan_items(plan: Plan, rng: np.random.Generator) -> list[tuple[str, int]]:
    """Return (text, label index) for every synthesized clip; unknown is the last label."""
    unknown = len(plan.phrases)
    items = [(phrase, index) for index, phrase in enumerate(plan.phrases)] * plan.per_phrase
    words, parts = negative_words(plan.phrases), phrase_parts(plan.phrases)
    texts = negative_texts(plan.phrases)
    n_parts = min(plan.negatives // 10, 30 * len(parts))
    n_texts = plan.negatives // 5
    n_words = plan.negatives - n_parts - n_texts
    items += [(str(rng.choice(words)), unknown) for _ in range(n_words)]
    items += [(parts[i % len(parts)], unknown) for i in range(n_parts)] if parts else []
    items += [(str(rng.choice(texts)), unknown) for _ in range(n_texts)]
    return items


# --------------------------------------------------------------------------- augmentation


def augment(rng: np.random.Generator, speech: np.ndarray, noise: NoiseSource) -> np.ndarray:
    """Return one realistic int16 recording of clean int16 ``speech``."""
    x = speech
    if rng.random() < 0.8:  # another vocal tract length (and tempo): a new speaker
        x = perturb_speed(x, float(np.exp(rng.uniform(-SPEED_RANGE, SPEED_RANGE))))
    x = x.astype(np.float32)
    before, after = (int(s * TARGET_RATE) for s in rng.uniform(0.1, 0.7, size=2))
    x = np.concatenate([np.zeros(before, np.float32), x, np.zeros(after, np.float32)])
    if rng.random() < 0.4:
        x = convolve(x, room_impulse(rng, float(rng.uniform(0.15, 0.7))))
    x *= 10 ** (rng.uniform(-38, -4) / 20) * 32768 / (np.max(np.abs(x)) + 1e-6)
    if rng.random() < 0.85:
        x = mix(x, noise.sample(rng, len(x)), float(rng.uniform(5, 30)))
    if rng.random() < 0.15:  # narrowband microphone / 8 kHz stream
        x = resample(resample(x / 32768, TARGET_RATE, 8000), 8000, TARGET_RATE) * 32768
    samples = to_int16(x / 32768)
    if rng.random() < 0.3 and len(speech) < 0.9 * TARGET_RATE:  # a 1 s clip, like a dataset
        start = int(before + (len(speech) - TARGET_RATE) * rng.uniform(0.2, 0.8))
        samples = samples[max(0, start) : max(0, start) + TARGET_RATE]
    return samples


def nonspeech(rng: np.random.Generator, noise: NoiseSource) -> np.ndarray:
    """Return a clip of non-speech sound: noise bursts, tones, clicks or plain noise."""
    length = int(rng.uniform(1.0, 2.5) * TARGET_RATE)
    t = np.arange(length) / TARGET_RATE
    base = noise.sample(rng, length) * 10 ** (rng.uniform(-50, -25) / 20)
    kind = rng.integers(4)
    if kind == 0:  # bursts: clatter, steps, knocks
        events = np.zeros(length, np.float32)
        for _ in range(int(rng.integers(1, 6))):
            start, size = int(rng.integers(length)), int(rng.uniform(0.01, 0.3) * TARGET_RATE)
            burst = colored_noise(rng, size, rng.uniform(0, 2)) * np.exp(
                -np.arange(size) / (size / 4)
            )
            events[start : start + size] += burst[: length - start] * rng.uniform(0.05, 0.5)
        base += events
    elif kind == 1:  # tones and sweeps: beeps, whistles, animals
        f0 = rng.uniform(200, 2000) * (1 + rng.uniform(-0.5, 0.5) * t / t[-1])
        tone = np.sin(2 * np.pi * np.cumsum(f0) / TARGET_RATE) * rng.uniform(0.02, 0.3)
        gate = (np.sin(2 * np.pi * rng.uniform(0.5, 4) * t) > rng.uniform(-0.5, 0.5)).astype(float)
        base += (tone * gate).astype(np.float32)
    elif kind == 2:  # a loud noise swell
        base *= (1 + rng.uniform(2, 30) * np.exp(-(((t - t.mean()) / 0.2) ** 2))).astype(np.float32)
    return to_int16(base)


# --------------------------------------------------------------------------- features


def featurize(
    embedder: SpeechEmbedder, clips: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Return pooled features of the clips where speech was found, and which those were."""
    windows, kept = [], []
    for index, clip in enumerate(clips):
        segment = speech_segment(clip)
        if segment is not None:
            windows.append(command_window(clip, segment))
            kept.append(index)
    if not windows:
        return np.empty((0, 0), np.float32), np.asarray(kept, dtype=np.int64)
    return pool(embedder.embeddings(np.stack(windows))), np.asarray(kept, dtype=np.int64)


def _chunks(items: Any, size: int) -> Iterator[Any]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def build_dataset(
    plan: Plan, embedder: SpeechEmbedder, voices: Sequence[Voice], noise: NoiseSource,
    recordings: Sequence[tuple[Path, int]] = (), progress: Progress | None = None,
) -> Dataset:  # fmt: skip
    """Synthesize, augment and embed every planned clip (in chunks, to bound memory).

    ``progress`` is called with the fraction done after every chunk; it may raise to stop.
    """
    rng = np.random.default_rng(plan.seed)
    data = Dataset()
    unknown = len(plan.phrases)
    requests = _requests(rng, plan_items(plan, rng), voices) if voices else []
    for done, chunk in enumerate(_chunks(requests, plan.chunk)):
        if progress is not None:
            progress(done * plan.chunk / len(requests))
        speech = synthesize([r for r, _ in chunk], workers=plan.threads, kokoro=plan.kokoro)
        clips = [augment(rng, clean, noise) for clean in speech]
        features, kept = featurize(embedder, clips)
        for row, index in zip(features, kept, strict=True):
            data.features.append(row)
            data.labels.append(chunk[index][1])
            data.families.append(chunk[index][0].voice.family)
    sounds = [nonspeech(rng, noise) for _ in range(plan.negatives // 10)]
    for chunk in _chunks(sounds, 256):
        features, _ = featurize(embedder, chunk)
        data.features += list(features)
        data.labels += [unknown] * len(features)
        data.families += ["sound"] * len(features)
    _add_recordings(recordings, embedder, noise, rng, data)
    return data


def recording_files(plan: Plan) -> list[tuple[Path, int]]:
    """Return ``recordings/<phrase or _unknown_>/*.wav`` with label indices; check the names."""
    if plan.recordings is None:
        return []
    labels = {phrase: index for index, phrase in enumerate(plan.phrases)}
    labels[UNKNOWN] = len(plan.phrases)
    files = []
    for folder in sorted(p for p in plan.recordings.iterdir() if p.is_dir()):
        if folder.name not in labels:
            raise TrainingError(
                f"{folder}: {folder.name!r} is not a phrase of the set (or _unknown_)"
            )
        files += [(path, labels[folder.name]) for path in sorted(folder.glob("*.wav"))]
    return files


def _add_recordings(
    files: Sequence[tuple[Path, int]], embedder: SpeechEmbedder, noise: NoiseSource,
    rng: np.random.Generator, data: Dataset,
) -> None:  # fmt: skip
    """Add each recording and augmented copies of it."""
    for path, label in files:
        try:
            clean = read_wav(path).samples
        except EngineError as err:
            raise TrainingError(f"{path}: {err}") from err
        clips = [clean] + [augment(rng, clean, noise) for _ in range(7)]
        features, _ = featurize(embedder, clips)
        data.features += list(features)
        data.labels += [label] * len(features)
        data.families += ["recording"] * len(features)


# --------------------------------------------------------------------------- the head


def train_head(
    x: np.ndarray, y: np.ndarray, classes: int, *, hidden: int, epochs: int, seed: int,
    members: int = 1, unknown_weight: float = 1.0,
) -> CommandHead:  # fmt: skip
    """Train ``members`` MLPs (seeds ``seed``, ``seed + 1``, ...) on the same standardisation.

    Each learns with Adam on class-balanced cross-entropy (numpy only): every class weighs the
    same in total, ``_unknown_`` (the last) ``unknown_weight`` times.
    """
    if members < 1:
        raise TrainingError(f"a head needs at least one member, not {members}")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    xs = ((x - mean) / scale).astype(np.float32)
    counts = np.bincount(y, minlength=classes).astype(np.float32)
    class_weight = len(y) / (classes * np.maximum(counts, 1.0))
    class_weight[-1] *= unknown_weight
    trained = [
        _train_member(xs, y, class_weight, hidden, epochs, seed + member)
        for member in range(members)
    ]
    stacked = {name: np.stack([params[name] for params in trained]) for name in trained[0]}
    return CommandHead(mean=mean.astype(np.float32), scale=scale.astype(np.float32), **stacked)


def merge_heads(heads: Sequence[CommandHead]) -> CommandHead:
    """Return one head averaging all members of ``heads`` (same phrases, same features).

    Heads trained on independently synthesized data each standardise with their own data's
    mean and scale; every member is re-expressed in the first head's standardisation
    (``w0`` rescaled, the shift folded into ``b0``), so it computes exactly what it did.
    """
    if not heads:
        raise TrainingError("nothing to merge")
    base = heads[0]
    shape = (base.inputs, base.hidden, base.classes)
    if any((h.inputs, h.hidden, h.classes) != shape for h in heads):
        raise TrainingError("only heads of the same inputs, hidden size and classes can be merged")
    w0, b0 = [], []
    for head in heads:
        ratio = (base.scale / head.scale)[np.newaxis, :, np.newaxis]
        shift = (base.mean - head.mean) / head.scale
        w0.append(head.w0 * ratio)
        b0.append(head.b0 + np.einsum("d,mdh->mh", shift, head.w0))
    return CommandHead(
        mean=base.mean,
        scale=base.scale,
        w0=np.concatenate(w0).astype(np.float32),
        b0=np.concatenate(b0).astype(np.float32),
        w1=np.concatenate([h.w1 for h in heads]),
        b1=np.concatenate([h.b1 for h in heads]),
    )


def _train_member(
    xs: np.ndarray, y: np.ndarray, class_weight: np.ndarray, hidden: int, epochs: int, seed: int
) -> dict[str, np.ndarray]:
    """Train one MLP on standardised features; return its weights."""
    rng = np.random.default_rng(seed)
    classes, width = len(class_weight), xs.shape[1]
    params = {
        "w0": (rng.standard_normal((width, hidden)) * np.sqrt(2 / width)).astype(np.float32),
        "b0": np.zeros(hidden, np.float32),
        "w1": (rng.standard_normal((hidden, classes)) * np.sqrt(1 / hidden)).astype(np.float32),
        "b1": np.zeros(classes, np.float32),
    }
    moments = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    lr, beta1, beta2, decay, step = 1e-3, 0.9, 0.999, 1e-4, 0
    onehot = np.eye(classes, dtype=np.float32)[y]
    for _epoch in range(epochs):
        for batch in _chunks(rng.permutation(len(y)), 128):
            xb = xs[batch] + rng.standard_normal((len(batch), width)).astype(np.float32) * 0.1
            pre = xb @ params["w0"] + params["b0"]
            mask = (rng.random(pre.shape) > 0.2).astype(np.float32) / 0.8  # dropout
            h = np.maximum(pre, 0) * mask
            logits = h @ params["w1"] + params["b1"]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            w = class_weight[y[batch]][:, None] / len(batch)
            dlogits = (p - onehot[batch]) * w
            dh = (dlogits @ params["w1"].T) * (pre > 0) * mask
            grads = {
                "w1": h.T @ dlogits + decay * params["w1"],
                "b1": dlogits.sum(axis=0),
                "w0": xb.T @ dh + decay * params["w0"],
                "b0": dh.sum(axis=0),
            }
            step += 1
            for name, grad in grads.items():
                m, v = moments[name]
                m[:] = beta1 * m + (1 - beta1) * grad
                v[:] = beta2 * v + (1 - beta2) * grad**2
                m_hat, v_hat = m / (1 - beta1**step), v / (1 - beta2**step)
                params[name] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return params


def rates(head: CommandHead, x: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    """Return phrase accuracy and unknown rejection of ``head`` at ``threshold``."""
    unknown = head.classes - 1
    p = head.probabilities(x)
    best = p[:, :-1].argmax(axis=1)
    accepted = p[np.arange(len(p)), best] >= threshold
    predicted = np.where(accepted, best, unknown)
    positive = y != unknown
    return {
        "phrase_accuracy": float(np.mean(predicted[positive] == y[positive])),
        "unknown_rejection": float(np.mean(predicted[~positive] == unknown)),
    }


def calibrate(head: CommandHead, x: np.ndarray, y: np.ndarray, accept: float) -> float:
    """Return the threshold that accepts ``accept`` of the phrase clips of unseen voices.

    Calibrating on the phrases, not on a trade-off with the negatives: voices the head never
    heard (real people) score lower than held-out synthetic ones, so a threshold that merely
    balances TTS accuracy against TTS rejection turns real commands away. Rejection comes
    from the ``_unknown_`` class; the threshold only drops what is not clearly a phrase.
    """
    unknown = head.classes - 1
    p = head.probabilities(x[y != unknown])
    scores = p[:, :-1].max(axis=1)
    if not len(scores):
        return DEFAULT_THRESHOLD
    threshold = float(np.quantile(scores, 1.0 - accept))
    return round(min(max(threshold, MIN_THRESHOLD), MAX_THRESHOLD), 3)


def validation_families(families: Sequence[str], seed: int) -> set[str]:
    """Pick one voice family per engine (when it has more than one) for calibration."""
    by_engine: dict[str, list[str]] = {}
    for family in sorted(set(families)):
        if ":" in family:
            by_engine.setdefault(family.split(":")[0], []).append(family)
    rng = np.random.default_rng(seed)
    return {str(rng.choice(names)) for names in by_engine.values() if len(names) > 1}


# --------------------------------------------------------------------------- the command set


def write_command_set(
    folder: Path, phrases: Sequence[str], head: CommandHead, threshold: float,
    training: dict[str, Any],
) -> Path:  # fmt: skip
    """Write the weights and ``manifest.json`` (sha256-pinned) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = head.to_bytes()
    (folder / WEIGHTS_NAME).write_bytes(data)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": folder.name,
        "phrases": list(phrases),
        "labels": [*phrases, UNKNOWN],
        "threshold": threshold,
        "features": {
            "speech_models": ["speech_mel", "speech_embedding"],
            "window_samples": WINDOW_SAMPLES,
            "segments": head.segments,
            "head": f"{head.members} x mlp {head.inputs}-{head.hidden}-{head.classes}",
        },
        "weights": {"path": WEIGHTS_NAME, "sha256": sha256_of(data), "size": len(data)},
        "training": training,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")
    return folder


def select_voices(hold_out: Sequence[str], kokoro: Path | None = None) -> list[Voice]:
    """Return the available voices minus those named (by id or family) in ``hold_out``."""
    voices = [
        v for v in available_voices(kokoro) if v.id not in hold_out and v.family not in hold_out
    ]
    if not voices:
        raise TrainingError("no TTS voice available: install espeak-ng, flite or festival")
    return voices


def train_command_set(
    plan: Plan, out: Path, embedder: SpeechEmbedder, progress: Progress | None = None,
    notes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train, calibrate, retrain on everything and write the command set; return its summary.

    ``progress`` gets the fraction of synthesis done (0..1); it may raise to cancel. ``notes``
    (such as the command line) are added to the manifest's training summary.
    """
    started = time.perf_counter()
    recordings = recording_files(plan)
    if not plan.use_tts and not recordings:
        raise TrainingError("without a synthesizer, training needs recordings of the phrases")
    voices = select_voices(plan.hold_out, plan.kokoro) if plan.use_tts else []
    noise_files = sorted(plan.noise.glob("*.wav")) if plan.noise else []
    data = build_dataset(plan, embedder, voices, NoiseSource(noise_files), recordings, progress)
    classes = len(plan.phrases) + 1
    held = validation_families(data.families, plan.seed)
    in_validation = np.isin(np.asarray(data.families), sorted(held))
    x_fit, y_fit = data.arrays(~in_validation)
    x_val, y_val = data.arrays(in_validation)
    options = {
        "hidden": plan.hidden, "epochs": plan.epochs, "seed": plan.seed, "members": plan.members,
    }  # fmt: skip
    probe = train_head(x_fit, y_fit, classes, **options)
    threshold = calibrate(probe, x_val, y_val, plan.accept) if len(y_val) else DEFAULT_THRESHOLD
    validation = rates(probe, x_val, y_val, threshold) if len(y_val) else {}
    x_all, y_all = data.arrays()
    head = train_head(x_all, y_all, classes, **options)
    training = {
        "seed": plan.seed,
        "members": plan.members,
        "accept": plan.accept,
        "clips": len(y_all),
        "clips_per_label": {
            label: int(count)
            for label, count in zip(
                [*plan.phrases, UNKNOWN], np.bincount(y_all, minlength=classes), strict=True
            )
        },
        "voices": len(voices),
        "voice_families": sorted({v.family for v in voices}),
        "held_out_voices": sorted(plan.hold_out),
        "validation_families": sorted(held),
        "validation": validation,
        "noise_files": {path.name: sha256_of(path.read_bytes()) for path in noise_files},
        "recordings": len(recordings),
        "seconds": round(time.perf_counter() - started, 1),
        **(notes or {}),
    }
    write_command_set(out, plan.phrases, head, threshold, training)
    return training

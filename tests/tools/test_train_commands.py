"""Training a command set from TTS: held-out voices are recognized, other words rejected."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from custom_components.compact_ai.engine.errors import SynthesisError, TrainingError
from custom_components.compact_ai.engine.voice.commands import (
    SILENCE,
    UNKNOWN,
    CommandRecognizer,
    CommandSet,
)
from custom_components.compact_ai.engine.voice.kokoro import phonemes
from custom_components.compact_ai.engine.voice.speech import SpeechEmbedder
from custom_components.compact_ai.engine.voice.training import (
    Plan,
    negative_words,
    phrase_parts,
    train_command_set,
)
from custom_components.compact_ai.engine.voice.tts import (
    NoiseSource,
    Prosody,
    Request,
    Voice,
    available_voices,
    colored_noise,
    mix,
    room_impulse,
    synthesize,
)
from tools.compact.cli import main
from tools.compact.evaluate.commands import load_speech_embedder
from tools.compact.pack.sources import KOKORO_VOICES, kokoro_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("flite") and shutil.which("espeak-ng")),
        reason="needs the TTS packages espeak-ng and flite (apt)",
    ),
]
HELD_OUT = Voice("flite", "awb")
PHRASES = ("yes", "stop")
OTHER_WORDS = ("table", "morning", "purple", "elephant", "seven", "banana")


@pytest.fixture(scope="module")
def embedder() -> SpeechEmbedder:
    return load_speech_embedder("reference", threads=2)


def small_plan(phrases: tuple[str, ...], **changes: object) -> Plan:
    options: dict[str, object] = {
        "per_phrase": 50,
        "negatives": 200,
        "hold_out": (HELD_OUT.id,),
        "epochs": 40,
        "seed": 0,
    }
    options.update(changes)
    return Plan(phrases=phrases, **options)  # type: ignore[arg-type]


def held_out_clips(texts: tuple[str, ...], seed: int) -> list[np.ndarray]:
    """The held-out voice at three speeds and pitches, in colored noise at 20 dB SNR."""
    rng = np.random.default_rng(seed)
    prosodies = [Prosody(0.9, 1.0), Prosody(1.0, 1.1), Prosody(1.15, 0.95)]
    requests = [Request(HELD_OUT, text, prosody) for text in texts for prosody in prosodies]
    clips = []
    for clean in synthesize(requests):
        padded = np.concatenate([np.zeros(4000), clean, np.zeros(4000)]).astype(np.float32)
        noisy = mix(padded, NoiseSource().sample(rng, len(padded)), 20.0)
        clips.append(np.clip(np.rint(noisy), -32768, 32767).astype(np.int16))
    return clips


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, embedder: SpeechEmbedder) -> Path:
    out = tmp_path_factory.mktemp("sets") / "yes_stop"
    train_command_set(small_plan(PHRASES), out, embedder)
    return out


def test_word_lists_exclude_the_phrases_and_their_homophones() -> None:
    words = negative_words(("no", "right", "lights on"))
    assert {"no", "know", "right", "write"}.isdisjoint(words)
    assert {"lights", "table"} <= set(words)
    assert phrase_parts(("unlock the door", "lights on")) == [
        "door", "lights", "on", "the door", "unlock", "unlock the",
    ]  # fmt: skip


def test_manifest_records_the_training(trained: Path) -> None:
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["phrases"] == list(PHRASES)
    assert manifest["labels"] == [*PHRASES, UNKNOWN]
    training = manifest["training"]
    assert training["held_out_voices"] == [HELD_OUT.id]
    assert HELD_OUT.family not in training["voice_families"]
    assert training["noise_files"] == {}
    assert training["clips_per_label"]["yes"] >= 30
    assert 0.2 <= manifest["threshold"] <= 0.9
    assert (training["members"], training["accept"]) == (3, 0.97)
    assert manifest["features"]["segments"] == 8
    assert manifest["features"]["head"] == "3 x mlp 960-128-3"


def test_held_out_voice_in_noise_is_recognized(trained: Path, embedder: SpeechEmbedder) -> None:
    recognizer = CommandRecognizer(embedder, CommandSet.load(trained))
    clips = held_out_clips(PHRASES, seed=1)
    truths = [phrase for phrase in PHRASES for _ in range(3)]
    labels = [recognizer.recognize(clip).label for clip in clips]
    correct = sum(label == truth for label, truth in zip(labels, truths, strict=True))
    assert correct >= 4, labels


def test_other_words_and_silence_are_rejected(trained: Path, embedder: SpeechEmbedder) -> None:
    recognizer = CommandRecognizer(embedder, CommandSet.load(trained))
    labels = [recognizer.recognize(clip).label for clip in held_out_clips(OTHER_WORDS, 2)]
    assert sum(label in (UNKNOWN, SILENCE) for label in labels) >= 14, labels
    assert recognizer.recognize(np.zeros(16000, np.int16)).label == SILENCE


def write_wav(path: Path, samples: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(samples.astype("<i2").tobytes())


def test_adding_a_phrase_and_evaluating_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "three"
    options = ["--hold-out-voice", HELD_OUT.id, "--per-phrase", "50", "--negatives", "200"]
    assert (
        main(["train-commands", "--phrases", "yes,stop,lights on", "--out", str(out), *options])
        == 0
    )
    capsys.readouterr()
    command_set = CommandSet.load(out)
    assert command_set.phrases == ("yes", "stop", "lights on")
    command = command_set.manifest["training"]["command"]
    assert command.startswith(
        "python -m tools.compact train-commands --phrases 'yes,stop,lights on'"
    )
    assert f"--out {out}" in command
    assert "--per-phrase 50 --negatives 200" in command
    audio = tmp_path / "audio"
    for label, texts in (("lights on", ("lights on",)), ("yes", ("yes",)), ("other", ("table",))):
        for index, clip in enumerate(held_out_clips(texts, seed=3)):
            write_wav(audio / label / f"{index}.wav", clip)
    write_wav(audio / "_silence_" / "quiet.wav", np.zeros(32000, np.int16))
    assert main(["commands", "--command-set", str(out), "--audio", str(audio), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy", "per_class", "unknown_rejection", "silence_rejection"} <= set(result)
    assert {"ms_per_utterance", "clips"} <= set(result)
    assert result["clips"] == 3 + 3 + 3 + 2
    assert result["silence_rejection"] == 1.0
    assert result["per_class"]["lights on"] >= 2 / 3
    assert result["command_accuracy"] >= 3 / 6

    # The same phrases as wake phrases, streamed in 40 ms chunks.
    assert main(["wake", "--command-set", str(out), "--audio", str(audio), "--json"]) == 0
    wake = json.loads(capsys.readouterr().out)
    assert set(wake["phrases"]) == {"yes", "stop", "lights on"}
    assert wake["phrases"]["lights on"]["clips"] == 3
    assert wake["phrases"]["lights on"]["detected"] >= 2 / 3
    assert wake["phrases"]["stop"]["detected"] is None
    assert wake["other_utterances"] == 3
    assert wake["noise_seconds"] == 2.0
    assert wake["false_wakes"] <= 1


def test_recordings_must_be_labelled_with_a_phrase(
    tmp_path: Path, embedder: SpeechEmbedder
) -> None:
    write_wav(tmp_path / "rec" / "maybe" / "a.wav", np.zeros(16000, np.int16))
    plan = small_plan(PHRASES, recordings=tmp_path / "rec")
    with pytest.raises(TrainingError, match="maybe"):
        train_command_set(plan, tmp_path / "out", embedder)
    assert not (tmp_path / "out").exists()


def test_every_engine_contributes_voices() -> None:
    engines = {voice.engine for voice in available_voices()}
    assert {"espeak-ng", "flite"} <= engines


@pytest.fixture(scope="module")
def kokoro() -> Path:
    return kokoro_dir()


def test_kokoro_adds_its_english_voices(kokoro: Path, tmp_path: Path) -> None:
    voices = available_voices(kokoro)
    assert {v.name for v in voices if v.engine == "kokoro"} == set(KOKORO_VOICES)
    assert {v.engine for v in voices} >= {"kokoro", "espeak-ng", "flite"}
    assert "kokoro" not in {v.engine for v in available_voices(tmp_path)}  # no model there
    assert "ɹ" in phonemes("right", "en-us")
    assert "r" not in phonemes("right", "en-us")


def test_kokoro_refuses_voices_and_folders_it_cannot_speak(kokoro: Path) -> None:
    with pytest.raises(SynthesisError, match="not an English voice"):
        synthesize([Request(Voice("kokoro", "jf_alpha"), "yes")], kokoro=kokoro)
    with pytest.raises(SynthesisError, match="no voice 'af_nobody'"):
        synthesize([Request(Voice("kokoro", "af_nobody"), "yes")], kokoro=kokoro)
    with pytest.raises(SynthesisError, match="no Kokoro folder"):
        synthesize([Request(Voice("kokoro", "af_heart"), "yes")])


@pytest.mark.parametrize(
    "voice",
    ["espeak-ng:en-gb-scotland+f2", "flite:slt", "festival:kal_diphone", "kokoro:bm_george"],
)
def test_synthesis_follows_rate_and_pitch(voice: str, kokoro: Path) -> None:
    chosen = next((v for v in available_voices(kokoro) if v.id == voice), None)
    if chosen is None:
        pytest.skip(f"{voice} is not installed")
    slow, fast, high, normal = synthesize(
        [
            Request(chosen, "unlock the door", Prosody(rate=0.8)),
            Request(chosen, "unlock the door", Prosody(rate=1.25)),
            Request(chosen, "unlock the door", Prosody(pitch=1.3)),
            Request(chosen, "unlock the door"),
        ],
        kokoro=kokoro,
    )
    assert slow.dtype == np.int16
    assert np.abs(slow).max() > 3000
    assert 1.3 < len(slow) / len(fast) < 1.9
    assert dominant_pitch(high) > 1.1 * dominant_pitch(normal)


def dominant_pitch(samples: np.ndarray) -> float:
    """Median autocorrelation pitch (60-400 Hz) of the loud 64 ms frames."""
    x = samples.astype(np.float64)
    pitches = []
    for start in range(0, len(x) - 1024, 512):
        frame = x[start : start + 1024]
        if np.sqrt(np.mean(frame**2)) < 0.3 * np.sqrt(np.mean(x**2)):
            continue
        corr = np.correlate(frame, frame, "full")[1023:]
        lag = 40 + int(np.argmax(corr[40:267]))
        pitches.append(16000 / lag)
    return float(np.median(pitches))


def test_colored_noise_and_room_impulse() -> None:
    rng = np.random.default_rng(0)
    pink = colored_noise(rng, 64000, 1.0)
    assert np.sqrt(np.mean(pink**2)) == pytest.approx(1.0, rel=1e-3)
    power = np.abs(np.fft.rfft(pink)) ** 2
    freqs = np.fft.rfftfreq(len(pink), 1 / 16000)
    low = power[(freqs > 200) & (freqs < 400)].mean()
    high = power[(freqs > 3200) & (freqs < 6400)].mean()
    assert 8 < low / high < 32  # 1/f: 4 octaves down is ~16x the power per bin
    impulse = room_impulse(rng, 0.5)
    assert np.sum(impulse**2) == pytest.approx(1.0, rel=1e-4)
    head, tail = impulse[1:4000], impulse[4000:]
    assert np.mean(head**2) > 100 * np.mean(tail**2)

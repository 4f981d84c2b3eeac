"""The command head, its sha256-pinned command set, and recognition end to end."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from custom_components.compact_ai.engine.errors import (
    ManifestError,
    ModelIntegrityError,
    TrainingError,
)
from custom_components.compact_ai.engine.voice.commands import (
    SILENCE,
    UNKNOWN,
    WINDOW_SAMPLES,
    CommandHead,
    CommandRecognizer,
    CommandSet,
    command_window,
    decide,
    pool,
)
from custom_components.compact_ai.engine.voice.speech import SpeechEmbedder
from custom_components.compact_ai.engine.voice.training import merge_heads, write_command_set
from tools.compact.cli import main
from tools.compact.evaluate.commands import load_speech_embedder
from tools.compact.paths import PACK_DIR

DEFAULT_SET = PACK_DIR / "commands" / "default"
PHRASES = ("yes", "no")


def random_head(
    features: int = 960, hidden: int = 8, classes: int = 3, members: int = 2, seed: int = 0
) -> CommandHead:
    rng = np.random.default_rng(seed)
    return CommandHead(
        mean=rng.normal(size=features).astype(np.float32),
        scale=rng.uniform(0.5, 2, features).astype(np.float32),
        w0=rng.normal(size=(members, features, hidden)).astype(np.float32),
        b0=rng.normal(size=(members, hidden)).astype(np.float32),
        w1=rng.normal(size=(members, hidden, classes)).astype(np.float32),
        b1=rng.normal(size=(members, classes)).astype(np.float32),
    )


def write_schema_1_set(folder: Path, head: CommandHead, threshold: float) -> Path:
    """Write a command set as schema 1 did: one member as 2-D arrays, 4 segments."""
    folder.mkdir(parents=True)
    buffer = io.BytesIO()
    one = {name: getattr(head, name)[0] for name in ("w0", "b0", "w1", "b1")}
    np.savez(buffer, mean=head.mean, scale=head.scale, **one)
    data = buffer.getvalue()
    (folder / "head.npz").write_bytes(data)
    manifest = {
        "schema_version": 1,
        "phrases": list(PHRASES),
        "threshold": threshold,
        "weights": {
            "path": "head.npz",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def command_dir(tmp_path: Path) -> Path:
    return write_command_set(tmp_path / "mine", PHRASES, random_head(), 0.6, {"seed": 0})


def test_head_round_trips_through_npz_bytes() -> None:
    head = random_head()
    again = CommandHead.from_bytes(head.to_bytes())
    x = np.random.default_rng(1).normal(size=(5, 960)).astype(np.float32)
    np.testing.assert_allclose(head.logits(x), again.logits(x), rtol=2e-3, atol=0.2)
    np.testing.assert_array_equal(
        CommandHead.from_bytes(again.to_bytes()).logits(x), again.logits(x)
    )
    p = again.probabilities(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert (again.members, again.inputs, again.hidden, again.classes) == (2, 960, 8, 3)
    assert again.segments == 8


def test_members_are_averaged_after_their_softmax() -> None:
    head = random_head(members=2)
    x = np.random.default_rng(1).normal(size=(4, 960)).astype(np.float32)
    logits = head.logits(x)
    assert logits.shape == (2, 4, 3)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    softmax = exp / exp.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(head.probabilities(x), softmax.mean(axis=0), rtol=1e-5)


def test_merged_heads_average_every_member_unchanged() -> None:
    one, two = random_head(members=2, seed=1), random_head(members=1, seed=2)
    merged = merge_heads([one, two])
    assert merged.members == 3
    x = np.random.default_rng(3).normal(size=(6, 960)).astype(np.float32)
    expected = (2 * one.probabilities(x) + two.probabilities(x)) / 3
    np.testing.assert_allclose(merged.probabilities(x), expected, atol=1e-5)
    with pytest.raises(TrainingError, match="same inputs"):
        merge_heads([one, random_head(classes=4)])
    with pytest.raises(TrainingError, match="nothing"):
        merge_heads([])


def test_merging_command_sets_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_command_set(tmp_path / "a", PHRASES, random_head(seed=1), 0.4, {"seed": 1})
    second = write_command_set(tmp_path / "b", PHRASES, random_head(seed=2), 0.6, {"seed": 2})
    out = tmp_path / "merged"
    argv = ["merge-commands", "--set", str(first), "--set", str(second), "--out", str(out)]
    assert main(argv) == 0
    merged = CommandSet.load(out)
    assert merged.head.members == 4 and merged.threshold == 0.5
    assert [t["seed"] for t in merged.manifest["training"]["merged"]] == [1, 2]
    assert merged.manifest["training"]["command"].startswith("python -m tools.compact merge")
    other = write_command_set(tmp_path / "c", ("yes", "go"), random_head(seed=3), 0.5, {})
    assert main([*argv[:5], "--set", str(other), "--out", str(tmp_path / "x")]) == 1
    assert "same phrases" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_inconsistent_weights_are_refused() -> None:
    head = random_head()
    broken = CommandHead(head.mean, head.scale, head.w0, head.b0, head.w1[:, :-1], head.b1)
    with pytest.raises(ModelIntegrityError, match="inconsistent"):
        CommandHead.from_bytes(broken.to_bytes())


def test_schema_1_sets_still_load_and_recognize(tmp_path: Path) -> None:
    head = random_head(features=576, members=1)
    folder = write_schema_1_set(tmp_path / "old", head, 0.6)
    loaded = CommandSet.load(folder)
    assert (loaded.head.members, loaded.head.segments, loaded.threshold) == (1, 4, 0.6)
    embeddings = np.random.default_rng(4).normal(size=(1, 16, 96)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.head.probabilities(pool(embeddings, loaded.head.segments)),
        head.probabilities(pool(embeddings, 4)),
        rtol=1e-6,
    )


def test_command_set_loads_after_its_sha256_matches(command_dir: Path) -> None:
    loaded = CommandSet.load(command_dir)
    assert loaded.phrases == PHRASES
    assert loaded.labels == (*PHRASES, UNKNOWN)
    assert loaded.threshold == 0.6
    assert loaded.name == "mine"


def test_tampered_weights_are_refused(command_dir: Path) -> None:
    weights = command_dir / "head.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        CommandSet.load(command_dir)


def test_manifest_pointing_at_other_weights_is_refused(command_dir: Path) -> None:
    manifest = json.loads((command_dir / "manifest.json").read_text())
    manifest["weights"]["sha256"] = "0" * 64
    (command_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError):
        CommandSet.load(command_dir)
    manifest["weights"]["path"] = "../elsewhere.npz"
    (command_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="inside the folder"):
        CommandSet.load(command_dir)


def test_phrase_list_must_match_the_head(tmp_path: Path) -> None:
    folder = write_command_set(tmp_path / "bad", ("yes", "no", "up"), random_head(), 0.5, {})
    with pytest.raises(ModelIntegrityError, match="phrase list"):
        CommandSet.load(folder)


@pytest.mark.parametrize("content", ["", "{", '{"schema_version": 1}', '{"schema_version": 9}'])
def test_broken_manifests_raise_manifest_error(command_dir: Path, content: str) -> None:
    if content == '{"schema_version": 9}':
        manifest = json.loads((command_dir / "manifest.json").read_text())
        manifest["schema_version"] = 9
        content = json.dumps(manifest)
    (command_dir / "manifest.json").write_text(content)
    with pytest.raises(ManifestError):
        CommandSet.load(command_dir)


def test_missing_folder_raises_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="not found"):
        CommandSet.load(tmp_path / "nothing")


def test_decision_uses_the_threshold(command_dir: Path) -> None:
    command_set = CommandSet.load(command_dir)
    assert decide(command_set, np.array([0.7, 0.2, 0.1])) == ("yes", pytest.approx(0.7))
    assert decide(command_set, np.array([0.1, 0.6, 0.3])) == ("no", pytest.approx(0.6))
    label, confidence = decide(command_set, np.array([0.5, 0.1, 0.4]))
    assert (label, confidence) == (UNKNOWN, pytest.approx(0.5))


def test_command_window_centres_pads_and_normalises() -> None:
    samples = np.zeros(48000, np.int16)
    samples[40000:44000] = 1000  # speech near the end: the window runs past it
    window = command_window(samples, (40000, 44000))
    assert window.shape == (WINDOW_SAMPLES,)
    loud = np.flatnonzero(window)
    assert (loud[0], loud[-1] + 1) == (14000, 18000)  # centred in the 2 s window
    peak_db = 20 * np.log10(np.abs(window).max() / 32768)
    assert peak_db == pytest.approx(-12.0, abs=0.1)


def test_pool_shape() -> None:
    embeddings = np.random.default_rng(2).normal(size=(3, 16, 96)).astype(np.float32)
    pooled = pool(embeddings)
    assert pooled.shape == (3, 960)
    np.testing.assert_allclose(pooled[:, :96], embeddings.mean(axis=1), rtol=1e-5)
    np.testing.assert_allclose(pooled[:, 192:288], embeddings[:, :2].mean(axis=1), rtol=1e-5)
    assert pool(embeddings, 4).shape == (3, 576)


class FailingModel:
    """Injects a failure: recognition of silence must not run any model."""

    backend = "none"
    input_names = ("x",)
    output_names = ("y",)

    def run(self, inputs: object) -> list[np.ndarray]:
        raise AssertionError("a model ran on audio without speech")


@pytest.mark.parametrize("length", [0, 100, 16000])
def test_no_speech_is_silence_without_running_models(command_dir: Path, length: int) -> None:
    recognizer = CommandRecognizer(
        SpeechEmbedder(FailingModel(), FailingModel()), CommandSet.load(command_dir)
    )
    result = recognizer.recognize(np.zeros(length, np.int16))
    assert result.label == SILENCE
    assert not result.is_command
    assert result.segment is None


@pytest.fixture(scope="module")
def embedder() -> SpeechEmbedder:
    return load_speech_embedder("reference")


def test_shipped_default_set_loads_verified(tmp_path: Path) -> None:
    command_set = CommandSet.load(DEFAULT_SET)
    assert {"yes", "no", "stop", "unlock the door", "lights off"} <= set(command_set.phrases)
    assert 0.0 < command_set.threshold < 1.0
    assert (DEFAULT_SET / "head.npz").stat().st_size < 3_000_000
    copy = tmp_path / "default"
    shutil.copytree(DEFAULT_SET, copy)
    (copy / "head.npz").write_bytes((copy / "head.npz").read_bytes()[:-1])
    with pytest.raises(ModelIntegrityError):
        CommandSet.load(copy)


def test_recognizer_returns_scores_for_every_label(
    command_dir: Path, embedder: SpeechEmbedder
) -> None:
    rng = np.random.default_rng(3)
    samples = np.zeros(32000, np.int16)
    burst = rng.normal(0, 3000, 8000) * np.hanning(8000)
    samples[12000:20000] = np.rint(burst).astype(np.int16)
    result = CommandRecognizer(embedder, CommandSet.load(command_dir)).recognize(samples)
    assert set(result.probabilities) == {*PHRASES, UNKNOWN}
    assert sum(result.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.segment is not None and 11000 < result.segment[0] < 13000

"""Kokoro-82M, a neural TTS with many natural English voices, for training voice commands.

Optional: used where its files are present and onnxruntime imports (``python -m tools.compact
fetch-sources --voices`` puts them in the tools' cache; Home Assistant hosts do not have it).
A folder holds ``kokoro.onnx`` (the int8 export), ``vocab.json`` (``{"vocab": {phoneme: id}}``) and
``voices/<name>.bin`` (float32 style vectors, 256 per phoneme count). Phonemes are espeak-ng's
IPA, as Kokoro's own browser port makes them. Only American (``a*``) and British (``b*``)
voices are used: the others speak English with their language's phonemes.
"""

from __future__ import annotations

import json
import subprocess
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from ..errors import SynthesisError
from .audio import TARGET_RATE, resample, to_int16

KOKORO: Final = "kokoro"
MODEL_NAME: Final = "kokoro.onnx"
VOCAB_NAME: Final = "vocab.json"
VOICES_DIR: Final = "voices"
SAMPLE_RATE: Final = 24_000
STYLE_SIZE: Final = 256
ACCENTS: Final = {"a": "en-us", "b": "en-gb"}  # voice name prefix -> espeak-ng accent
# espeak-ng symbols Kokoro's vocabulary spells differently.
_PHONEME_FIXES: Final = str.maketrans({"ʲ": "j", "r": "ɹ", "x": "k", "ɬ": "l"})
_TIMEOUT: Final = 60.0


def kokoro_voice_names(folder: Path | None) -> list[str]:
    """Return the English voices in ``folder``; none without its files or onnxruntime."""
    if folder is None or not (folder / MODEL_NAME).is_file() or not (folder / VOCAB_NAME).is_file():
        return []
    try:
        import onnxruntime  # noqa: F401 - optional: absent on musl hosts
    except ImportError:
        return []
    names = (path.stem for path in sorted((folder / VOICES_DIR).glob("*.bin")))
    return [name for name in names if name[:1] in ACCENTS]


def phonemes(text: str, accent: str) -> str:
    """Return espeak-ng's IPA for ``text`` in Kokoro's spelling."""
    try:
        result = subprocess.run(
            ["espeak-ng", "-q", "--ipa", "-v", accent, text],
            capture_output=True, timeout=_TIMEOUT, check=True, text=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as err:
        raise SynthesisError(f"espeak-ng could not phonemize {text!r}: {err}") from err
    return " ".join(result.stdout.split()).translate(_PHONEME_FIXES)


class Kokoro:
    """One loaded model; :meth:`speak` may run from several threads at once."""

    def __init__(self, folder: Path, threads: int = 1) -> None:
        """Load the model and vocabulary from ``folder``."""
        import onnxruntime  # optional: absent on musl hosts

        self.folder = folder
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session: Any = onnxruntime.InferenceSession(
                str(folder / MODEL_NAME), options, providers=["CPUExecutionProvider"]
            )
            vocab = json.loads((folder / VOCAB_NAME).read_text("utf-8"))
        except Exception as err:  # onnxruntime's errors derive from Exception only
            raise SynthesisError(f"Kokoro cannot load {folder}: {err}") from err
        self._vocab: dict[str, int] = vocab["vocab"]
        self._styles: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _style(self, voice: str, tokens: int) -> np.ndarray:
        with self._lock:
            if voice not in self._styles:
                path = self.folder / VOICES_DIR / f"{voice}.bin"
                try:
                    raw = np.fromfile(path, dtype="<f4")
                except OSError as err:
                    raise SynthesisError(f"Kokoro has no voice {voice!r}") from err
                self._styles[voice] = raw.reshape(-1, STYLE_SIZE)
            styles = self._styles[voice]
        return np.asarray(styles[min(tokens, len(styles) - 1)][np.newaxis])

    def speak(self, text: str, voice: str, speed: float = 1.0) -> np.ndarray:
        """Return ``text`` spoken by ``voice`` as 16 kHz int16; ``speed`` > 1 is faster."""
        accent = ACCENTS.get(voice[:1])
        if accent is None:
            raise SynthesisError(f"Kokoro voice {voice!r} is not an English voice")
        ids = [self._vocab[symbol] for symbol in phonemes(text, accent) if symbol in self._vocab]
        if not ids:
            raise SynthesisError(f"Kokoro has no phonemes for {text!r}")
        feeds = {
            "tokens": np.asarray([[0, *ids, 0]], dtype=np.int64),
            "style": self._style(voice, len(ids)),
            "speed": np.asarray([speed], dtype=np.float32),
        }
        try:
            audio = self._session.run(None, feeds)[0]
        except Exception as err:  # onnxruntime's errors derive from Exception only
            raise SynthesisError(f"Kokoro failed on {text!r}: {err}") from err
        return to_int16(resample(np.asarray(audio, np.float32).ravel(), SAMPLE_RATE, TARGET_RATE))


@lru_cache(maxsize=1)
def load_kokoro(folder: Path) -> Kokoro:
    """Return the model in ``folder``, loaded once per process (it is 90 MB)."""
    return Kokoro(folder)

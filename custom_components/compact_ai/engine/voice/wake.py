"""Wake phrases: the command recognizer listening to a stream for some of its phrases.

The stream is cut into utterances by the same voice-activity detector the recognizer uses:
once the loudest burst in the recent audio is followed by :data:`END_QUIET_SAMPLES` of quiet
(the detector bridges shorter gaps), that utterance goes through the recognizer exactly as a
speech-to-text request would, and the audio up to its end is dropped. So a wake phrase is
detected about 0.3 s after it is spoken, and only if the speaker pauses that long after it.
Speech that never pauses for :data:`MAX_UTTERANCE_SAMPLES` is skipped, oldest audio first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

import numpy as np

from .audio import TARGET_RATE, speech_segment
from .commands import CommandRecognizer, CommandResult

HOP_SAMPLES: Final = TARGET_RATE // 4  # look for an ended utterance every 250 ms
END_QUIET_SAMPLES: Final = int(0.3 * TARGET_RATE)  # the detector's longest bridged gap
MAX_UTTERANCE_SAMPLES: Final = 4 * TARGET_RATE  # longer speech is no wake phrase
CONTEXT_SAMPLES: Final = TARGET_RATE // 2  # audio kept before an utterance (noise floor)


@dataclass(frozen=True, slots=True)
class WakeDetection:
    """A wake phrase heard; ``end`` counts samples from the start of the stream."""

    phrase: str
    confidence: float
    end: int


class WakeSpotter:
    """Feed 16 kHz mono int16 audio in any chunk size; get a detection when a phrase ends.

    Not thread-safe: one stream, one caller at a time.
    """

    def __init__(self, recognizer: CommandRecognizer, phrases: Collection[str]) -> None:
        """Listen for ``phrases`` (phrases of the recognizer's command set)."""
        unknown = set(phrases) - set(recognizer.command_set.phrases)
        if not phrases or unknown:
            raise ValueError(f"not phrases of the command set: {sorted(unknown) or 'none given'}")
        self.recognizer = recognizer
        self.phrases = frozenset(phrases)
        self.last: CommandResult | None = None  # the last utterance classified
        self._buffer = np.zeros(0, np.int16)
        self._offset = 0  # stream position of the buffer's first sample
        self._unchecked = 0

    @property
    def buffered(self) -> int:
        """Return the number of samples held (the bound on the spotter's memory)."""
        return len(self._buffer)

    @property
    def received(self) -> int:
        """Return the number of samples fed so far."""
        return self._offset + len(self._buffer)

    def feed(self, samples: np.ndarray) -> WakeDetection | None:
        """Add ``samples``; return a detection if a wake phrase ended in the audio so far."""
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, np.int16)])
        self._unchecked += len(samples)
        detection = None
        while self._unchecked >= HOP_SAMPLES and detection is None:
            self._unchecked -= HOP_SAMPLES
            detection = self._check(len(self._buffer) - self._unchecked)
        return detection

    def _check(self, upto: int) -> WakeDetection | None:
        """Classify the loudest utterance in ``buffer[:upto]`` if it has ended."""
        audio = self._buffer[:upto]
        segment = speech_segment(audio)
        if segment is None:
            self._drop(max(0, upto - CONTEXT_SAMPLES))
            return None
        start, end = segment
        if upto - end < END_QUIET_SAMPLES:  # still speaking (or just paused)
            if end - start > MAX_UTTERANCE_SAMPLES:
                self._drop(end - MAX_UTTERANCE_SAMPLES)
            return None
        result = self.recognizer.recognize(audio[max(0, start - CONTEXT_SAMPLES) : upto])
        self.last = result
        self._drop(end)
        if result.label in self.phrases:
            return WakeDetection(result.label, result.confidence, self._offset)
        return None

    def _drop(self, samples: int) -> None:
        """Forget the first ``samples`` of the buffer."""
        self._buffer = self._buffer[samples:]
        self._offset += samples

"""When each word of a spoken sentence is heard: from the synthesizer when it says, else estimated from the audio."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

FRAME_S = 0.01
# A pause between words: this much quieter than the sentence's loud frames, for at least PAUSE_S.
PAUSE_DB = 30.0
PAUSE_S = 0.04
# A proportional boundary moves to a pause at most this far away.
SNAP_S = 0.2


@dataclass(frozen=True)
class WordTiming:
    """One word and when it is heard, in seconds from the sentence's first sample."""

    word: str
    start: float
    end: float


def words_of(text: str) -> list[str]:
    """The words as shown on screen (punctuation stays attached: "Hello," "world!")."""
    return text.split()


def _weight(word: str) -> float:
    # Spoken length grows with the letters, and a comma or full stop adds a pause after the word
    # (weights fitted on Piper's alignments of 20 corpus sentences: mean start error 0.14 s).
    letters = len(re.sub(r"[^\w]", "", word))
    return 1.0 + letters + (2.5 if re.search(r"[,;:.!?]$", word) else 0.0)


def estimate(text: str, samples: np.ndarray, rate: int) -> list[WordTiming]:
    """Spread the words over the voiced part by syllable weight, then snap boundaries to pauses."""
    words = words_of(text)
    if not words or len(samples) == 0:
        return []
    hop = max(1, int(rate * FRAME_S))
    n = len(samples) // hop
    if n == 0:
        return [WordTiming(w, 0.0, len(samples) / rate) for w in words]
    frames = samples[: n * hop].reshape(n, hop)
    db = 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)) + 1e-9)
    loud = db > db.max() - PAUSE_DB
    voiced = np.flatnonzero(loud)
    if len(voiced) == 0:
        return [WordTiming(w, 0.0, len(samples) / rate) for w in words]
    first, last = voiced[0] * FRAME_S, (voiced[-1] + 1) * FRAME_S
    pauses = _pause_centres(loud[voiced[0]: voiced[-1] + 1], voiced[0])
    weights = [_weight(w) for w in words]
    # Word by word: spread what is left over the time left, then move the boundary to a nearby
    # pause; each snap re-times the rest, so one good pause fixes the words after it too.
    edges = [first]
    for i in range(1, len(words)):
        proposed = edges[-1] + (last - edges[-1]) * weights[i - 1] / sum(weights[i - 1:])
        near = [p for p in pauses if abs(p - proposed) <= SNAP_S and p > edges[-1] + FRAME_S]
        edges.append(min(near, key=lambda p: abs(p - proposed)) if near else proposed)
    edges.append(last)
    return [WordTiming(w, round(float(edges[i]), 3), round(float(edges[i + 1]), 3)) for i, w in enumerate(words)]


def _pause_centres(loud: np.ndarray, offset: int) -> list[float]:
    centres, run = [], 0
    for i, is_loud in enumerate(loud):
        if not is_loud:
            run += 1
            continue
        if run * FRAME_S >= PAUSE_S:
            centres.append((offset + i - run / 2) * FRAME_S)
        run = 0
    return centres


def from_phonemes(text: str, alignments: list, rate: int) -> list[WordTiming]:
    """Word times from Piper's phoneme alignments: words are separated by the ' ' phoneme."""
    words = words_of(text)
    starts, pos, in_word = [], 0, False
    spans: list[tuple[int, int]] = []
    for a in alignments:
        if a.phoneme == " " or not a.phoneme.strip():
            if in_word:
                spans.append((starts[-1], pos))
                in_word = False
        elif not in_word and re.search(r"\w", a.phoneme):
            starts.append(pos)
            in_word = True
        pos += a.num_samples
    if in_word:
        spans.append((starts[-1], pos))
    if len(spans) != len(words):
        return []  # numbers or abbreviations spoken as several words: the caller estimates instead
    return [WordTiming(w, round(float(s) / rate, 3), round(float(e) / rate, 3)) for w, (s, e) in zip(words, spans, strict=True)]

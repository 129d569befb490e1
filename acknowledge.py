"""Instant acknowledgements: a short friendly line the moment a turn ends, while the model starts."""

from __future__ import annotations

import collections
import random
import statistics
from typing import Optional

import lang
from llm.prompts import Mode


def _lines(language: str) -> dict[Mode, tuple[str, ...]]:
    """The language's acknowledgements by mode (lang keys them by the mode's value)."""
    return {Mode(mode): lines for mode, lines in lang.get(language).acknowledgements.items()}


class Pace:
    """When to say the acknowledgement, from how soon the model's first sentences came lately.

    A model whose first sentence is ready within quick_s (a GPU, a vLLM server) needs no courtesy
    line in front of it: the story itself is the answer, and a 3-second line would only delay it.
    Such a model is given quick_s; only when it is later than that this time is the line said. A
    slow one (Phi-3-mini on a CPU), or one not yet seen, gets the line at once.
    """

    def __init__(self, quick_s: float = 0.5, keep: int = 5):
        self.quick_s = quick_s
        self.recent: collections.deque[float] = collections.deque(maxlen=keep)

    def record(self, first_sentence_s: float) -> None:
        """A turn's time from the model's start to its first sentence."""
        self.recent.append(first_sentence_s)

    def wait_s(self) -> float:
        """How long to wait for the first sentence before the line is said (0: say it at once)."""
        if not self.recent or statistics.median(self.recent) > self.quick_s:
            return 0.0
        return self.quick_s


class Acknowledger:
    """Picks a line for the mode and language, never the same one twice in a row.

    pace: when given, the line is said only if the model is slower than it has lately been quick
    (speech.acknowledge: auto); without one, always at once.
    """

    def __init__(self, language: str, rng: Optional[random.Random] = None, pace: Optional[Pace] = None):
        self.lines = _lines(language)
        self.rng = rng or random.Random()
        self.last: Optional[str] = None
        self.pace = pace

    def all_lines(self) -> list[str]:
        """Every line it may say (so a speaker can make them ahead)."""
        return [line for lines in self.lines.values() for line in lines]

    def use_language(self, language: str) -> None:
        """Speak another language from now on (the teacher changed it)."""
        self.lines = _lines(language)

    def line(self, mode: Mode) -> Optional[str]:
        """A short friendly line for this kind of turn; None where none fits (a repeat is said at once)."""
        if mode not in self.lines:
            return None
        choices = [line for line in self.lines[mode] if line != self.last] or self.lines[mode]
        self.last = self.rng.choice(choices)
        return self.last

    def wait_s(self) -> float:
        """How long the turn waits for its first sentence before saying the line (0: at once)."""
        return self.pace.wait_s() if self.pace is not None else 0.0

    def first_sentence(self, seconds: float) -> None:
        """How long the model took to its first sentence this turn (the pace learns from it)."""
        if self.pace is not None:
            self.pace.record(seconds)

"""Instant acknowledgements: a short friendly line the moment a turn ends, while the model starts."""

from __future__ import annotations

import random
from typing import Optional

import lang
from llm.prompts import Mode


def _lines(language: str) -> dict[Mode, tuple[str, ...]]:
    """The language's acknowledgements by mode (lang keys them by the mode's value)."""
    return {Mode(mode): lines for mode, lines in lang.get(language).acknowledgements.items()}


class Acknowledger:
    """Picks a line for the mode and language, never the same one twice in a row."""

    def __init__(self, language: str, rng: Optional[random.Random] = None):
        self.lines = _lines(language)
        self.rng = rng or random.Random()
        self.last: Optional[str] = None

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

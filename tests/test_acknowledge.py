"""Instant acknowledgements: varied, in the child's language, fitting what was asked."""

import random

import lang
from acknowledge import Acknowledger
from llm.prompts import Mode


def test_lines_vary_and_never_repeat_back_to_back():
    ack = Acknowledger("en", random.Random(0))
    said = [ack.line(Mode.NEW_STORY) for _ in range(20)]
    assert all(a != b for a, b in zip(said, said[1:]))
    assert len(set(said)) >= 3


def test_every_language_has_a_line_for_every_mode_but_repeat():
    for language in ("en", "fr", "de"):
        for mode in Mode:
            if mode is Mode.REPEAT:  # said at once: no courtesy line before it
                assert Acknowledger(language).line(mode) is None
            else:
                assert Acknowledger(language).line(mode) in lang.get(language).acknowledgements[mode.value]


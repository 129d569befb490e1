"""Instant acknowledgements: varied, in the child's language, fitting what was asked."""

import random

import lang
from acknowledge import Acknowledger, Pace
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



def test_the_line_is_said_at_once_until_the_model_has_lately_been_quick():
    pace = Pace(quick_s=0.5, keep=3)
    assert pace.wait_s() == 0  # a model not yet seen: the line at once
    pace.record(0.2)
    assert pace.wait_s() == 0.5  # quick: it is given half a second to be first
    for seconds in (3.1, 2.4):
        pace.record(seconds)
    assert pace.wait_s() == 0  # the median of the last three is 2.4 s: slow, the line at once again
    for seconds in (0.3, 0.2):
        pace.record(seconds)
    assert pace.wait_s() == 0.5  # the oldest are forgotten
    assert Acknowledger("en").wait_s() == 0  # without a pace (speech.acknowledge: true): always at once

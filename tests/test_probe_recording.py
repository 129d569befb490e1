"""harness/probe_recording.py (bench/v2v_probe.py) reads what the child heard back from a probe recording: the cue, the answer, cues mid-request."""

from __future__ import annotations

import numpy as np

from harness.probe_recording import clips, runs, summary

RATE = 16000


def tone(seconds: float) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * RATE)) / RATE).astype(np.float32)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def test_runs_merge_close_sounds_and_keep_far_ones_apart():
    x = np.concatenate([quiet(0.1), tone(0.2), quiet(0.1), tone(0.2), quiet(1.0), tone(0.1)])
    found = runs(x, 0.01, int(0.25 * RATE))
    assert len(found) == 2 and abs(found[0][0] / RATE - 0.1) < 0.01 and abs(found[1][0] / RATE - 1.6) < 0.01


def test_a_cue_after_the_last_word_then_the_answer_and_a_cue_in_the_pause():
    # Clip 1: the child speaks 1 s; 0.6 s later the cue (0.18 s); 1.96 s after the last word the answer (2 s).
    # Clip 2 (10 s later): the child pauses mid-request and hears a cue, goes on; then the answer alone at 0.8 s.
    child = np.concatenate([quiet(0.5), tone(1.0), quiet(12.0), tone(0.8), quiet(1.2), tone(0.8), quiet(8.0)])
    app = np.zeros_like(child)

    def put(at_s: float, sound: np.ndarray) -> None:
        app[int(at_s * RATE): int(at_s * RATE) + len(sound)] = sound

    put(1.5 + 0.6, tone(0.18))
    put(1.5 + 1.96, tone(2.0))
    second_start = 0.5 + 1.0 + 12.0
    put(second_start + 0.8 + 0.5, tone(0.18))  # in the pause
    last_word = second_start + 0.8 + 1.2 + 0.8
    put(last_word + 0.8, tone(2.5))
    first, second = clips(child, app, RATE)
    assert first["cue_first"] and abs(first["first_s"] - 0.6) < 0.01 and abs(first["answer_s"] - 1.96) < 0.01
    assert first["cues_mid"] == 0
    assert not second["cue_first"] and abs(second["first_s"] - 0.8) < 0.01 and abs(second["answer_s"] - 0.8) < 0.01
    assert second["cues_mid"] == 1
    row = summary("whole", [first, second])
    assert (row["n"], row["cue_first"], row["cued_mid"], row["first_median_ms"]) == (2, 1, 1, 700)

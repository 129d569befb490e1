"""Barge-in in classroom babble (issue #20): how loud a voice must begin to stop the story (or start a turn).

In audio time, through the Listener's own start rule and Silero VAD: classmates' babble alone
(how often it would stop the story: false barge-ins a minute) and a child's request over the same
babble (whether it stops the story, and how long after the child began), for several start
margins above the room's floor (`listen.start_margin_db`). The echo is left out: what the
canceller leaves of it is measured in the room itself (tests/test_echo_room.py, BENCHMARKS 9b).

Two sets: the tuning set (harness/speech_clips.py's babble and requests), on which the default
was chosen, and a check set of other lines and voices, reported on its own and never chosen on.
Run: python -m bench.barge_in [--margins 6 9 12 15 18] [--json PATH]
"""

from __future__ import annotations

import argparse
import threading

import numpy as np

from audio.listen import Listener
from audio.vad import FRAME_S, EndpointConfig, SileroScorer, frame_db
from bench.common import add_json_arg, finish_meta, machine_meta, write_json
from events import EventBus
from harness.speech_clips import (CHILD_VOICES, RATE, REQUESTS, babble, babble_of, espeak, frames_of, rms,
                                  voiced_end_s)

CHILD_DBFS = -26.0  # the child's voice at the microphone (RMS of its voiced part)
LEAD_S = 4.0  # babble before the child speaks: the floor has learnt the room, as during a story
# Kept apart: other classmates, other words, other voices; and what a child says over a story.
CHECK_BABBLE = [
    ("Can I borrow your red crayon for a minute please?", "en-gb+f2", 85, 150),
    ("My grandma has a big brown dog called Biscuit.", "en-us+m4", 70, 145),
    ("We built a tall tower out of blocks this morning.", "en-us+f4", 90, 155),
    ("Look, it is raining outside, we cannot go out.", "en-gb+m2", 75, 135),
    ("Who wants to be the line leader after snack time?", "en-us+f2", 95, 160),
]
CHECK_REQUESTS = ["No, make it about a pirate!", "Can the cat fly to the moon?", "I don't like this one.",
                  "Wait, what is the fox called?"]


def probs_of(scorer: SileroScorer, samples: np.ndarray) -> list[float]:
    """Silero's probability of each frame, computed once (every margin replays the same ones)."""
    scorer.reset()
    return [scorer(f) for f in frames_of(samples)]


class Replay:
    """The Listener's scorer: a clip's Silero probabilities given back frame by frame."""

    def __init__(self, probs: list[float]):
        self.p, self.i = probs, 0

    def __call__(self, frame: np.ndarray) -> float:
        self.i += 1
        return self.p[self.i - 1]


def starts(samples: np.ndarray, probs: list[float], margin_db: float) -> list[float]:
    """Seconds into the clip at which a barge-in would have stopped the story (one per utterance begun).

    The first LEAD_S only teach the listener's floor the room, as the turns before a story have.
    """
    replay = Replay(probs)
    listener = Listener(replay, None, EventBus(), EndpointConfig(0.25, 0.8, 15.0), start_margin_db=margin_db)
    frames = frames_of(samples)
    for _ in range(round(LEAD_S / FRAME_S)):
        listener.noise.update(frame_db(next(frames)))
        replay.i += 1
    at: list[float] = []
    stop = threading.Event()
    while replay.i < len(probs):
        if listener.utterance(frames, stop, on_start=lambda: at.append(replay.i * FRAME_S), announce=False) is None:
            break
    return at


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """x scaled to an RMS of dbfs (its voiced part)."""
    return x * (10 ** (dbfs / 20) / max(rms(x), 1e-9))


def with_hiss(x: np.ndarray, seed: int) -> np.ndarray:
    """A microphone's own hiss, -65 dBFS, under everything."""
    return (x + np.random.default_rng(seed).normal(0, 10 ** (-65 / 20), len(x))).astype(np.float32)


def measure(name: str, babble: np.ndarray, requests: list[str], voices, snrs: list[float], margins: list[float],
            scorer: SileroScorer) -> list[dict]:
    """False barge-ins a minute in babble alone, and the requests that stop the story: a row per SNR and margin."""
    rows = []
    speeches = [(i, j, at_level(espeak(text, *voice), CHILD_DBFS)) for i, text in enumerate(requests)
                for j, voice in enumerate(voices)]
    for snr in snrs:
        noise = at_level(babble, CHILD_DBFS - snr)
        alone = with_hiss(noise, 1)
        p_alone = probs_of(scorer, alone)
        clips = []
        lead = int(LEAD_S * RATE)
        for i, j, speech in speeches:
            begin = (i * 7919 + j * 104729) % (len(noise) - lead - len(speech) - 2 * RATE)  # another moment of it
            clip = noise[begin : begin + lead + len(speech) + 2 * RATE].copy()
            clip[lead : lead + len(speech)] += speech
            clip = with_hiss(clip, 2 + i * 10 + j)
            onset = LEAD_S + np.flatnonzero(np.abs(speech) > 10 ** (-40 / 20))[0] / RATE
            clips.append((clip, probs_of(scorer, clip), onset, LEAD_S + voiced_end_s(speech)))
        for margin in margins:
            false = len(starts(alone, p_alone, margin)) / ((len(alone) / RATE - LEAD_S) / 60)
            hit, late, early = 0, [], 0
            for clip, probs, onset, end in clips:
                at = starts(clip, probs, margin)
                early += sum(1 for t in at if t < onset - 0.05)
                mine = [t for t in at if onset - 0.05 <= t <= end]
                if mine:
                    hit += 1
                    late.append(mine[0] - onset)
            med = f"{np.median(late) * 1000:.0f}" if late else "-"
            print(f"| {name} | {snr:.0f} dB | {margin:.0f} dB | {false:.1f} | {hit}/{len(clips)} | {med} | {early} |",
                  flush=True)
            rows.append({"set": name, "snr_db": snr, "start_margin_db": margin, "false_per_min": round(false, 2),
                         "stopped": hit, "requests": len(clips),
                         "median_ms": round(float(np.median(late)) * 1000) if late else None, "early": early})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margins", type=float, nargs="+", default=[6, 9, 12, 15, 18])
    parser.add_argument("--snr", type=float, nargs="+", default=[15, 10])
    parser.add_argument("--seconds", type=float, default=120.0, help="babble alone, per set and SNR")
    add_json_arg(parser)
    args = parser.parse_args()
    meta = machine_meta(lead_s=LEAD_S, child_dbfs=CHILD_DBFS, babble_s=args.seconds)
    scorer = SileroScorer()
    print("| set | child over babble | start margin | false barge-ins a minute | requests that stop it "
          "| median ms after the child began | babble starts before the child |")
    print("|---|---|---|---|---|---|---|")
    rows = measure("tuning", babble(args.seconds), REQUESTS, CHILD_VOICES[:2], args.snr, args.margins, scorer)
    rows += measure("check", babble_of(CHECK_BABBLE, args.seconds, 7), CHECK_REQUESTS, CHILD_VOICES[2:], args.snr,
                    args.margins, scorer)
    write_json(args.json, finish_meta(meta), rows)


if __name__ == "__main__":
    main()

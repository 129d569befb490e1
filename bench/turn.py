"""Turn latency waterfall: a child's recorded request -> transcript -> first token -> first sentence -> first audio.

    python -m bench.turn [--configs A.yaml,B.yaml] [--clips 12] [--max-new-tokens 40] [--device pulse] [--no-pace] [--json out.json]

Each clip (harness/speech_clips.py: the children's requests spoken by eSpeak NG in three voices) goes
through the project's pipeline.Session.run_recording: Silero VAD endpointing, Whisper, the
Storyteller, the Speaker with its acknowledgement. The TurnEnd event gives each step in seconds from
the detected end of speech, i.e. after the endpointing silence (listen.end_silence_s), which is
added for the "from the child's last word" columns. No sound card is needed: by default the audio
goes to a stand-in that plays in real time (write() blocks for the samples' duration, as a device
does), so the first story sentence waits behind the acknowledgement as it would on a kiosk.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    ROOT,
    add_json_arg,
    finish_meta,
    machine_meta,
    print_table,
    progress,
    write_json,
)
from bench.llm_speed import TimedBackend

DEFAULT_CONFIGS = ["/tmp/tinyfinal/config.yaml", str(ROOT / "configs" / "starter.yaml")]
# (TurnEnd field, what it is), in the order they happen.
STAGES = [
    ("stt_s", "transcript ready"),
    ("first_token_s", "first token"),
    ("first_sentence_s", "first sentence"),
    ("first_audio_s", "first audio (acknowledgement)"),
    ("first_story_audio_s", "first story audio"),
    ("reply_generated_s", "whole reply generated"),
    ("total_s", "whole reply spoken"),
]
COLUMNS = [("model", "model"), ("stage", "stage (from detected end of speech)"), ("median_s", "median s"),
           ("p90_s", "p90 s"), ("from_last_word_median_s", "+ endpointing, median s"), ("n", "n")]


class PacedOutput:
    """A sound card stand-in: write() returns when the block would have been played."""

    def __init__(self) -> None:
        self._until: float | None = None

    def write(self, block: np.ndarray, rate: int) -> None:
        """Block for the samples' duration, keeping a steady clock across blocks."""
        now = time.monotonic()
        self._until = max(now, self._until or now) + len(block) / rate
        time.sleep(max(0.0, self._until - now - 0.01))  # a real device returns with ~10 ms still buffered

    def pause(self) -> None:
        """Nothing queued: the next write starts a new timeline."""
        self._until = None

    def discard(self) -> None:
        """Stopped: drop the rest."""
        self._until = None

    def close(self) -> None:
        """Nothing to release."""


def make_clips(folder: Path, count: int) -> list[tuple[str, str, Path]]:
    """Write (voice, request) clips as 16 kHz wav files; voices change slowest, like children queueing."""
    import soundfile as sf

    from harness.speech_clips import RATE, REQUESTS, VOICES, espeak, silence

    clips = []
    for voice in VOICES:
        for text in REQUESTS:
            if len(clips) == count:
                return clips
            path = folder / f"{voice[0]}-{len(clips)}.wav"
            sf.write(path, np.concatenate([silence(0.3), espeak(text, *voice), silence(0.2)]), RATE)
            clips.append((voice[0], text, path))
    return clips


def p90(values: list[float]) -> float:
    """90th percentile (inclusive method; the maximum for fewer than 2 values)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def run_config(config: str, clips: list, args: argparse.Namespace, tmp: Path) -> tuple[dict, list[dict]]:
    """Build the app from a config as main.py does, answer every clip; (description, per-turn records)."""
    from acknowledge import Acknowledger
    from audio.devices import DeviceOutput, WavRecorder
    from audio.listen import create_listener
    from audio.speak import Speaker
    from audio.tts import create_synthesizer
    from events import EventBus, Heard, TurnEnd
    from llm.backends import create_backend
    from llm.storyteller import Storyteller
    from main import build_guard
    from pipeline import Session
    from turn import Stages
    from settings import load_settings

    settings = load_settings(config).with_overrides(llm={"max_new_tokens": args.max_new_tokens, "seed": 0})
    llm, story = settings.llm, settings.story
    bus = EventBus()
    ends: list[tuple[float, TurnEnd]] = []
    heard: list[str] = []
    bus.subscribe(lambda e: ends.append((time.monotonic(), e)) if isinstance(e, TurnEnd) else None)
    bus.subscribe(lambda e: heard.append(e.text) if isinstance(e, Heard) else None)
    timed = TimedBackend(create_backend(llm))
    # The safety layer as main.py builds it: it checks every request and sentence of the turn.
    storyteller = Storyteller(timed, story.age_group, story.language, llm.memory_tokens, story.max_sentence_words,
                              steer_retries=settings.safety.steer_retries)
    output = None if args.no_pace else (DeviceOutput(args.device) if args.device else PacedOutput())
    recorder = WavRecorder(str(tmp / f"{Path(config).parent.name}-{Path(config).stem}.wav"))
    speaker = Speaker(create_synthesizer(settings.speech, story.language), bus, output=output, recorder=recorder).start()
    acknowledger = Acknowledger(story.language) if settings.speech.acknowledge else None
    session = Session(Stages(storyteller, bus, show=lambda text: None, guard=build_guard(settings), speaker=speaker,
                             acknowledger=acknowledger))
    listener = create_listener(settings.listen, story.language, bus)
    session.run_recording(listener, str(clips[0][2]))  # warm-up: Whisper, VAD, model and voice
    ends.clear()
    heard.clear()
    turns = []
    voice = None
    try:
        for clip_voice, text, path in progress(clips, desc=Path(config).stem):
            if clip_voice != voice:  # a new child: a new story, not a continuation of the last one
                storyteller.reset()
                voice = clip_voice
            before = len(ends)
            session.run_recording(listener, str(path))
            if len(ends) == before:
                turns.append({"voice": clip_voice, "said": text, "heard": None, "no_turn": True})
                continue
            received, end = ends[-1]
            start = received - end.total_s  # the turn's t0 on the monotonic clock
            generated = round(timed.ended_at - start, 4) if timed.ended_at else None
            turns.append({"voice": clip_voice, "said": text, "heard": heard[-1] if heard else None,
                          **{k: getattr(end, k) for k in ("stt_s", "first_token_s", "first_sentence_s", "first_audio_s",
                                                     "first_story_audio_s", "total_s", "sentences", "tokens")},
                          "reply_generated_s": generated})
    finally:
        speaker.close()
    info = {"description": timed.description, "end_silence_s": settings.listen.end_silence_s,
            "stt": f"{settings.listen.stt_engine} {settings.listen.model}", "tts": settings.speech.engine}
    return info, turns


def waterfall(model: str, info: dict, turns: list[dict]) -> list[dict[str, Any]]:
    """Median and p90 of each stage, plus the pipelining gain."""
    rows = []
    for key, stage in STAGES:
        values = [t[key] for t in turns if t.get(key) is not None]
        if not values:
            rows.append({"model": model, "stage": stage, "key": key, "median_s": None, "p90_s": None, "n": 0})
            continue
        med = statistics.median(values)
        rows.append({"model": model, "stage": stage, "key": key, "median_s": round(med, 3), "p90_s": round(p90(values), 3),
                     "from_last_word_median_s": round(med + info["end_silence_s"], 3), "n": len(values)})
    # What streaming sentence by sentence buys: without it, speech could only start after the whole
    # reply was generated (and then spoken: total_s would grow by the generation time).
    gains = [t["reply_generated_s"] / t["first_story_audio_s"] for t in turns
             if t.get("reply_generated_s") and t.get("first_story_audio_s")]
    if gains:
        rows.append({"model": model, "stage": "pipelining gain: reply generated / first story audio (x)",
                     "key": "pipelining_gain", "median_s": round(statistics.median(gains), 2),
                     "p90_s": round(p90(gains), 2), "n": len(gains)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run every config on the same clips and print the waterfall."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="comma-separated config.yaml files")
    p.add_argument("--clips", type=int, default=12, help="how many clips (4 requests x 3 voices at most)")
    p.add_argument("--max-new-tokens", type=int, default=40, help="reply length; real stories are longer")
    p.add_argument("--device", help="a real PortAudio output (e.g. pulse) instead of the real-time stand-in")
    p.add_argument("--no-pace", action="store_true", help="no playback at all (wav only): fast, for tests")
    add_json_arg(p)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-turn-"))
    clips = make_clips(tmp, args.clips)
    meta = machine_meta(input=f"{len(clips)} eSpeak NG clips ({len({c[0] for c in clips})} voices): "
                              + "; ".join(sorted({c[1] for c in clips})),
                        max_new_tokens=args.max_new_tokens,
                        output=args.device or ("none (wav only)" if args.no_pace else "real-time stand-in"),
                        timing="seconds from the detected end of speech (TurnEnd); endpointing silence added in its column")
    rows, raw = [], {}
    for config in args.configs.split(","):
        model = Path(config).parent.name if Path(config).stem == "config" else Path(config).stem
        if not Path(config).is_file():
            rows.append({"model": model, "stage": f"skipped: {config} not found"})
            continue
        info, turns = run_config(config, clips, args, tmp)
        meta[f"{model}_setup"] = info
        raw[model] = turns
        rows += waterfall(model, info, turns)
    finish_meta(meta)
    print_table(rows, COLUMNS, meta)
    write_json(args.json, meta, rows, turns=raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())

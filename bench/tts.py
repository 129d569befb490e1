"""Speech output benchmark: time from a sentence being ready to its first sample, and real-time factor.

    python -m bench.tts [--device pulse] [--engines pyttsx3,piper] [--json out.json]

Each engine speaks the same sentences from shared/corpus-like story text through the project's
Speaker; "first sample" is when the speaker starts writing the sentence's audio to the output.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from audio.devices import DeviceOutput, WavRecorder
from audio.speak import Speaker
from audio.tts import PiperSynthesizer, Pyttsx3Synthesizer
from bench.common import (
    add_json_arg,
    finish_meta,
    machine_meta,
    print_table,
    write_json,
)
from events import EventBus, SpeakStart

COLUMNS = [("engine", "engine"), ("first_sample_ms_median", "first sample ms median"),
           ("first_sample_ms_max", "max"), ("rtf_median", "RTF")]
SENTENCES = [  # ten words each, the length of a typical story sentence for young children
    "The little fox found a shiny red apple today.",
    "Once upon a time a bear lived near the river.",
    "The moon smiled down at the sleepy little rabbit tonight.",
    "Benny the robot wanted to learn how to dance.",
    "A tiny bird sang a happy song every single morning.",
    "The brave girl climbed the hill to see the stars.",
    "Grandma baked warm cookies for all the hungry animals.",
    "The old owl knew every secret of the dark forest.",
]


def bench_engine(name: str, synth, device: str | None, tmp: Path) -> dict:
    """Speak each sentence once (after a warm-up) and time say() -> speak_start."""
    bus = EventBus()
    starts: dict[str, float] = {}
    bus.subscribe(lambda e: starts.setdefault(e.text, time.perf_counter()) if isinstance(e, SpeakStart) else None)
    output = DeviceOutput(device) if device else None
    recorder = None if device else WavRecorder(str(tmp / f"{name.split('/')[0]}.wav"))
    speaker = Speaker(synth, bus, output=output, recorder=recorder).start()
    synth.synthesize("Warm up.")
    latencies, rtfs = [], []
    for text in SENTENCES:
        t0 = time.perf_counter()
        speaker.say(text)
        speaker.wait_idle()
        latencies.append(starts[text] - t0)
        s0 = time.perf_counter()
        audio = synth.synthesize(text)
        rtfs.append((time.perf_counter() - s0) / audio.duration)
    speaker.close()
    return {
        "engine": name,
        "first_sample_ms_median": round(1000 * statistics.median(latencies), 1),
        "first_sample_ms_max": round(1000 * max(latencies), 1),
        "rtf_median": round(statistics.median(rtfs), 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", help="PortAudio output device (e.g. pulse); default: no device, wav only")
    p.add_argument("--engines", default="pyttsx3,piper", help="comma-separated: pyttsx3, piper")
    add_json_arg(p)
    args = p.parse_args()
    tmp = Path("/tmp/bench-tts")
    tmp.mkdir(exist_ok=True)
    meta = machine_meta(output=args.device or "wav only", input=f"{len(SENTENCES)} ten-word sentences")
    engines = {
        "pyttsx3": ("pyttsx3/eSpeak NG", Pyttsx3Synthesizer),
        "piper": ("Piper joe-medium", PiperSynthesizer),
    }
    rows = []
    for key in args.engines.split(","):
        name, engine = engines[key]
        rows.append(bench_engine(name, engine("en", None, 150, 1.0), args.device, tmp))
    print_table(rows, COLUMNS, finish_meta(meta))
    write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()

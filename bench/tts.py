"""Speech output benchmark: time from a sentence being ready to its first sample, and real-time factor.

    python bench/tts.py [--device pulse] [--json out.json]

Each engine speaks the same sentences from shared/corpus-like story text through the project's
Speaker; "first sample" is when the speaker starts writing the sentence's audio to the output.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from audio.devices import DeviceOutput, WavRecorder  # noqa: E402
from audio.speak import Speaker  # noqa: E402
from audio.tts import PiperSynthesizer, Pyttsx3Synthesizer  # noqa: E402
from events import EventBus  # noqa: E402

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
    bus.subscribe(lambda r: starts.setdefault(r["text"], time.perf_counter()) if r["event"] == "speak_start" else None)
    output = DeviceOutput(device) if device else None
    recorder = None if device else WavRecorder(str(tmp / f"{name.split('/')[0]}.wav"))
    speaker = Speaker(synth, bus, output=output, recorder=recorder)
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
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    tmp = Path("/tmp/bench-tts")
    tmp.mkdir(exist_ok=True)
    rows = [
        bench_engine("pyttsx3/eSpeak NG", Pyttsx3Synthesizer("en", None, 150, 1.0), args.device, tmp),
        bench_engine("Piper joe-medium", PiperSynthesizer("en", None, 150, 1.0), args.device, tmp),
    ]
    meta = {"date": str(date.today()), "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "output": args.device or "wav only", "input": f"{len(SENTENCES)} ten-word sentences"}
    print(f"{'engine':20} {'first sample ms (median / max)':>32} {'RTF':>6}")
    for r in rows:
        print(f"{r['engine']:20} {r['first_sample_ms_median']:>20} / {r['first_sample_ms_max']:<9} {r['rtf_median']:>6}")
    print(meta)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Echo cancellation in a virtual room (issue #20): what the canceller leaves of the storyteller's voice.

The room: PulseAudio's kiosk devices with the speaker looped back into the microphone
(harness/echo_room.py). The app's own Speaker tells a story of N sentences through the real
device while the app's Microphone hears it; the raw frames and the cancelled ones are compared:
echo return loss enhancement (ERLE) per second, and what Silero VAD makes of the rest.
Run: python -m bench.echo [--sentences 20] [--save DIR]
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from audio.devices import DeviceOutput
from audio.echo import EchoCanceller, PlayedAudio, check_echo
from audio.listen import Microphone
from audio.speak import Speaker
from audio.tts import create_synthesizer
from audio.vad import SileroScorer
from events import EventBus
from settings import Settings

STORY = [
    "Once upon a time, a little robot lived at the edge of a quiet town.",
    "Every morning it rolled down the hill to water the sunflowers.",
    "One day the sunflowers were sad, because the rain had not come for a week.",
    "The robot looked up at the sky and thought very hard.",
    "It filled its watering can at the river, again and again.",
    "A small girl named Mia saw the robot and ran to help.",
    "Together they carried water until the sun went down.",
    "The sunflowers lifted their heads and smiled at the evening sky.",
]


def db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)


def story(n: int) -> list[str]:
    return [STORY[i % len(STORY)] for i in range(n)]


def run(sentences: int, save: str | None = None) -> dict:
    """Tell the story in the room; returns the measurements."""
    settings = Settings()
    bus = EventBus()
    ref = PlayedAudio(seconds=120.0)  # the whole story, for --save
    canceller = EchoCanceller(ref)
    output = DeviceOutput(None)
    mic = Microphone(None)
    mic.open()
    stop = threading.Event()
    synth = create_synthesizer(settings.speech, "en", "Early Elementary")
    report = check_echo(output.write, mic.read_stamped(stop), ref, canceller)
    mic.drain()
    speaker = Speaker(synth, bus, output=output, reference=ref).start()
    heard: list[tuple[np.ndarray, float]] = []
    cancelled: list[np.ndarray] = []
    spent: list[float] = []

    def record() -> None:  # live, as Microphone.read does: the reference keeps only its last seconds
        for frame, at in mic.read_stamped(stop):
            heard.append((frame, at))
            took = time.perf_counter()
            cancelled.append(canceller.process(frame, at))
            spent.append(time.perf_counter() - took)

    reader = threading.Thread(target=record, daemon=True)
    reader.start()
    began = time.monotonic()
    for text in story(sentences):
        speaker.say(text)
    speaker.wait_idle()
    time.sleep(0.5)
    stop.set()
    reader.join(2)
    speaker.close()
    mic.close()
    raw = np.concatenate([f for f, _ in heard])
    out = np.concatenate(cancelled)
    per_frame_ms = 1000 * float(np.median(spent))
    if save:
        import soundfile as sf

        sf.write(f"{save}/raw.wav", raw, 16000)
        sf.write(f"{save}/cancelled.wav", out, 16000)
        far = ref.window(ref.index(heard[-1][1]), len(raw))
        sf.write(f"{save}/far.wav", far, 16000)
    seconds = [(db(raw[i : i + 16000]), db(out[i : i + 16000])) for i in range(0, len(raw) - 15999, 16000)]
    vad = SileroScorer()
    probs = [vad(out[i : i + 512]) for i in range(0, len(out) - 511, 512)]
    return {"check": report.line(), "seconds": len(raw) / 16000, "speech_s": time.monotonic() - began,
            "erle_per_s": [round(a - b, 1) for a, b in seconds], "raw_dbfs": round(db(raw), 1),
            "cancelled_dbfs": round(db(out), 1), "erle_db": round(db(raw) - db(out), 1),
            "vad_frames_over_0.5": int(sum(p > 0.5 for p in probs)), "vad_frames": len(probs),
            "ms_per_frame": round(per_frame_ms, 2), "vad_max": round(max(probs), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sentences", type=int, default=20)
    p.add_argument("--save", help="a folder for raw.wav, cancelled.wav and far.wav")
    args = p.parse_args()
    import json

    print(json.dumps(run(args.sentences, args.save), indent=1))


if __name__ == "__main__":
    main()

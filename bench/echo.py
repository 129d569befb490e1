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
from audio.echo import MONITOR_REANCHOR_S, REANCHOR_S, EchoCanceller, PlayedAudio, check_echo
from audio.listen import Microphone
from audio.pulse import SpeakerMonitor, find_monitor
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


def run(sentences: int, save: str | None = None, reference: str = "monitor", pause_s: float = 0.0) -> dict:
    """Tell the story in the room; returns the measurements.

    reference: the far end, the speaker's monitor or the blocks the app writes; pause_s: silence
    between the sentences (each one then starts from quiet, as an answer after a child's turn does).
    """
    settings = Settings()
    bus = EventBus()
    ref = PlayedAudio(seconds=120.0 + sentences * pause_s)  # the whole story, for --save
    monitor = reference == "monitor"
    canceller = EchoCanceller(ref, reanchor_s=MONITOR_REANCHOR_S if monitor else REANCHOR_S)
    plain = EchoCanceller(ref, reanchor_s=canceller.reanchor_s, residual_db=None)  # AEC3 alone
    output = DeviceOutput(None)
    mic = Microphone(None, echo=canceller, far=SpeakerMonitor(find_monitor(), ref) if monitor else None)
    mic.open()
    stop = threading.Event()
    synth = create_synthesizer(settings.speech, "en", "Early Elementary")
    report = check_echo(output.write, mic.read_stamped(stop), ref, canceller, feed=not monitor)
    mic.drain()
    speaker = Speaker(synth, bus, output=output, reference=None if monitor else ref).start()
    heard: list[tuple[np.ndarray, float]] = []
    cancelled: list[np.ndarray] = []
    aec3: list[np.ndarray] = []
    spent: list[float] = []

    def record() -> None:  # live, as Microphone.read does: the reference keeps only its last seconds
        for frame, at in mic.read_stamped(stop):
            heard.append((frame, at))
            took = time.perf_counter()
            cancelled.append(canceller.process(frame, at))
            spent.append(time.perf_counter() - took)
            aec3.append(plain.process(frame, at))

    reader = threading.Thread(target=record, daemon=True)
    reader.start()
    began = time.monotonic()
    for text in story(sentences):
        speaker.say(text)
        if pause_s:
            speaker.wait_idle()
            time.sleep(pause_s)
    speaker.wait_idle()
    time.sleep(0.5)
    stop.set()
    reader.join(2)
    speaker.close()
    mic.close()
    raw = np.concatenate([f for f, _ in heard])
    out = np.concatenate(cancelled)
    alone = np.concatenate(aec3)
    per_frame_ms = 1000 * float(np.median(spent))
    if save:
        import soundfile as sf

        sf.write(f"{save}/raw.wav", raw, 16000)
        sf.write(f"{save}/cancelled.wav", out, 16000)
        far = ref.window(ref.index(heard[-1][1]), len(raw))
        sf.write(f"{save}/far.wav", far, 16000)
    seconds = [(db(raw[i : i + 16000]), db(out[i : i + 16000])) for i in range(0, len(raw) - 15999, 16000)]
    # Where the story starts from quiet: ERLE of each 100 ms in its loud part, the worst of them.
    tenths = [db(raw[i : i + 1600]) - db(out[i : i + 1600]) for i in range(0, len(raw) - 1599, 1600)
              if db(raw[i : i + 1600]) > db(raw) - 10]
    vad = SileroScorer()
    probs = [vad(out[i : i + 512]) for i in range(0, len(out) - 511, 512)]
    scorer = SileroScorer()
    probs_alone = [scorer(alone[i : i + 512]) for i in range(0, len(alone) - 511, 512)]
    return {"check": report.line(), "reference": reference, "pause_s": pause_s, "seconds": len(raw) / 16000,
            "speech_s": time.monotonic() - began, "erle_per_s": [round(a - b, 1) for a, b in seconds],
            "raw_dbfs": round(db(raw), 1), "cancelled_dbfs": round(db(out), 1), "erle_db": round(db(raw) - db(out), 1),
            "erle_aec3_alone_db": round(db(raw) - db(alone), 1),
            "erle_worst_100ms": round(min(tenths), 1) if tenths else None,
            "erle_100ms_under_20db": int(sum(t < 20 for t in tenths)), "loud_100ms": len(tenths),
            "vad_frames_over_0.5": int(sum(p > 0.5 for p in probs)), "vad_frames": len(probs),
            "vad_frames_over_0.5_aec3_alone": int(sum(p > 0.5 for p in probs_alone)),
            "reanchored": canceller.reanchored,
            "ms_per_frame": round(per_frame_ms, 2), "vad_max": round(max(probs), 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sentences", type=int, default=20)
    p.add_argument("--save", help="a folder for raw.wav, cancelled.wav and far.wav")
    p.add_argument("--reference", choices=["monitor", "played"], default="monitor",
                   help="the far end: the speaker's monitor (PulseAudio), or the blocks the app writes")
    p.add_argument("--pause", type=float, default=0.0, help="seconds of silence between the sentences")
    args = p.parse_args()
    import json

    from harness.echo_room import EchoRoom

    with EchoRoom():  # the kiosk's virtual devices must be up (python3 ../shared/tools/v2v.py up)
        print(json.dumps(run(args.sentences, args.save, args.reference, args.pause), indent=1))


if __name__ == "__main__":
    main()

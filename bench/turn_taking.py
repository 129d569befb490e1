"""End-of-turn decisions on child-voice clips, timed in audio time: who is cut off, how long each waits.

    python -m bench.turn_taking [--configs words+sound,words,silence] [--voices 5] [--json out.json]
    python -m bench.turn_taking --write-clips DIR   # wavs for ../shared/tools/v2v.py measure

Real Silero VAD, Whisper and Smart Turn read each clip frame by frame, as from a microphone, with
the early transcript made at once (Listener(inline=True)): the figures are the decisions alone, the
same on any machine; the time Whisper and the turn model take is in their own columns (and the
whole of it in ../shared/tools/v2v.py's figures, BENCHMARKS.md section 7).

Sets (harness/speech_clips.py), in four child-pitched eSpeak voices and Piper's voice raised:
- paused: requests with a 1.0 s pause where the child looks for a word (PAUSED_REQUESTS, tuned on)
  and PAUSED_CHECK (kept apart, never used to choose a setting), each said as one sentence with a
  break (eSpeak SSML; Piper cut at its word alignment), so the voice is still mid-sentence at the
  pause as a child's is; "paused, joined": both sets as two utterances joined, the first ending as
  a sentence. "cut" = the turn ended before the rest of the request began.
- whole: whole requests; short: answers to a question ("Yes.", "The fox.", read as the app reads an
  answer: no resume window); babble: whole requests over classroom babble at 10 dB SNR.
  "first sound" = the listening cue (or the answer, where none came) - the child's last word;
  "answered" = the end of the turn, when the answer begins - the child's last word.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

import jiwer
import numpy as np

from audio.listen import create_listener
from audio.vad import FRAME_S
from bench.common import add_json_arg, finish_meta, machine_meta, print_table, progress, write_json
from bench.stt import NORMALIZE
from events import EventBus
from settings import ListenSettings
from harness.speech_clips import (
    CHILD_VOICES,
    PAUSED_CHECK,
    PAUSED_REQUESTS,
    REQUESTS,
    SHORT_ANSWERS,
    babble,
    espeak,
    espeak_paused,
    frames_of,
    mix_at_snr,
    piper_child,
    piper_paused,
    silence,
    voiced_end_s,
)

# name -> the listen settings it changes: the end of a turn by the words and the sound, by the words
# alone, the sound's score reported only, and the fixed silence the app had before.
CONFIGS: dict[str, dict[str, Any]] = {
    "words+sound": {"turn_model": "smart-turn", "turn_threshold": 0.5},
    "words+sound-hold": {"turn_model": "smart-turn", "turn_threshold": 0.5, "turn_hold_below": 0.1},
    "words": {"turn_model": "off"},  # the default: the cue at finished words, then resume_s for more
    "words-probe-0.15": {"turn_model": "off", "probe_s": 0.15},
    "words-probe-0.2": {"turn_model": "off", "probe_s": 0.2},  # the default until 2026-12-03
    "words-no-resume": {"turn_model": "off", "resume_s": 0.0},  # the turn answered at the early end (before)
    "words-no-prompt": {"turn_model": "smart-turn", "turn_threshold": 0.0, "story_prompt": False},
    "silence": {"turn_model": "off", "probe_s": 0.0, "unfinished_hold_s": 0.0, "resume_s": 0.0},
}
# Answers to a question end at once in the app (no resume window): the "short" set is read so.
ANSWERS = {"short"}
PAUSE_S = 1.0
LEAD_S = 0.4
COLUMNS = [("config", "end of turn by"), ("set", "set"), ("n", "n"), ("cut", "cut"),
           ("first_median_s", "first sound median s"), ("first_p90_s", "first sound p90 s"),
           ("cues_mid", "cues mid-request"), ("wer", "WER of what is answered"), ("wait_median_s", "answered median s"),
           ("wait_p90_s", "answered p90 s"), ("wait_max_s", "answered max s"), ("stt_ms", "Whisper ms/call"),
           ("turn_model_ms", "turn model ms/call")]


class Voices:
    """Speech for a line in the n-th voice: eSpeak's child voices, then Piper raised."""

    def __init__(self, count: int):
        self.count, self._piper = count, None

    @property
    def piper(self):
        if self._piper is None:
            from audio.tts import PiperSynthesizer

            self._piper = PiperSynthesizer("en", None, 160, 1.0)
        return self._piper

    def say(self, text: str, i: int) -> np.ndarray:
        """The line in voice i (0-based)."""
        return espeak(text, *CHILD_VOICES[i]) if i < len(CHILD_VOICES) else piper_child(self.piper, text)

    def say_paused(self, head: str, tail: str, i: int) -> tuple[np.ndarray, float]:
        """One sentence with a PAUSE_S pause after head, the voice mid-sentence before it; and where the rest begins."""
        if i < len(CHILD_VOICES):
            return espeak_paused(head, tail, *CHILD_VOICES[i], PAUSE_S)
        return piper_paused(self.piper, head, tail, PAUSE_S)


def clips(voices: Voices, noise: np.ndarray, limit: int = 0) -> list[dict[str, Any]]:
    """Every clip of every set: its samples, where the child's last word ends, and for paused ones where the rest begins.

    limit: at most this many lines of each set (0: all), a quick check.
    """
    def first(lines):
        return lines[:limit] if limit else lines

    out = []
    for i in range(voices.count):
        for name, pairs in (("paused", first(PAUSED_REQUESTS)), ("paused, kept apart", first(PAUSED_CHECK))):
            for head, tail in pairs:
                said, rest_s = voices.say_paused(head, tail, i)
                samples = np.concatenate([silence(LEAD_S), said])
                out.append({"set": name, "voice": i, "samples": samples, "rest_s": LEAD_S + rest_s,
                            "last_s": LEAD_S + voiced_end_s(said), "text": f"{head} {tail}"})
                # The same request as two utterances joined: the voice ends the first as a sentence.
                a, b = voices.say(head, i), voices.say(tail, i)
                a = a[: int(voiced_end_s(a) * 16000)]  # the pause is exactly PAUSE_S of silence
                start = LEAD_S + len(a) / 16000 + PAUSE_S
                samples = np.concatenate([silence(LEAD_S), a, silence(PAUSE_S), b])
                out.append({"set": "paused, joined", "voice": i, "samples": samples, "rest_s": start,
                            "last_s": start + voiced_end_s(b), "text": f"{head} {tail}"})
        for name, lines in (("whole", first(REQUESTS)), ("short", first(SHORT_ANSWERS))):
            for text in lines:
                s = voices.say(text, i)
                out.append({"set": name, "voice": i, "samples": np.concatenate([silence(LEAD_S), s]),
                            "last_s": LEAD_S + voiced_end_s(s), "text": text})
        for text in first(REQUESTS):
            s = voices.say(text, i)
            offset = 1.0
            mixed = mix_at_snr(s, noise[: int((len(s) / 16000 + offset + 4.0) * 16000)], 10.0, offset)
            out.append({"set": "babble", "voice": i, "samples": mixed, "last_s": offset + voiced_end_s(s), "noisy": True,
                        "text": text})
    return out


# For v2v.py: lines not in the sets above, so the outside measurement is not of what was tuned on.
V2V_REQUESTS = ["Can you tell me a story about a brave little mouse?", "I want a story about a dinosaur who loves to dance.",
                "Tell me a story about the moon.", "Please tell me a funny story about a cat.",
                "Tell me a story about a pirate and a parrot.", "Can I have a story about a sleepy owl?",
                "I would like a story about a unicorn in the snow.", "What happens to the little fox?"]
V2V_PAUSED = [("Tell me a story about a", "penguin who can sing.", 1.2), ("Can you tell me a story with a", "happy whale?", 0.8),
              ("I want a story about the", "biggest tree in the forest.", 1.5), ("Tell me about a bunny and", "her carrot.", 1.0)]
V2V_SHORT = ["Yes.", "The dragon.", "No thank you.", "I don't know."]


def write_clips(folder: str) -> None:
    """16 kHz wavs with silence around, for v2v.py measure: whole requests, paused ones, short answers."""
    import soundfile as sf
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    voices = Voices(len(CHILD_VOICES) + 1)
    pad = silence(0.5)
    for i, text in enumerate(V2V_REQUESTS):
        sf.write(out / f"whole{i}.wav", np.concatenate([pad, voices.say(text, i % voices.count), pad]), 16000)
    for i, (head, tail, pause_s) in enumerate(V2V_PAUSED):
        v = i % voices.count
        said = espeak_paused(head, tail, *CHILD_VOICES[v], pause_s)[0] if v < len(CHILD_VOICES) else \
            piper_paused(voices.piper, head, tail, pause_s)[0]
        sf.write(out / f"paused{i}.wav", np.concatenate([pad, said, pad]), 16000)
    for i, text in enumerate(V2V_SHORT):
        sf.write(out / f"short{i}.wav", np.concatenate([pad, voices.say(text, (i + 1) % voices.count), pad]), 16000)
    print(f"wrote {len(V2V_REQUESTS) + len(V2V_PAUSED) + len(V2V_SHORT)} clips to {out}")


def run(listener, clip: dict[str, Any]) -> float:
    """Seconds of audio read when the turn was answered (the listener returns at once in inline mode).

    clip["cues"] gets the audio time of each listening cue (the first sound the child hears back).
    """
    counter = [0]
    clip["heard"], clip["cues"] = None, []
    listener.scorer.reset()
    listener.noise.reset()
    tail = 4.0 if clip.get("noisy") else 3.0
    samples = clip["samples"] if clip.get("noisy") else np.concatenate([clip["samples"], silence(tail)])
    heard = listener.listen(frames_of(samples, counter), threading.Event(), resume=clip["set"] not in ANSWERS,
                            on_cue=lambda: clip["cues"].append(counter[0] * FRAME_S))
    clip["heard"] = heard.text if heard is not None else None
    return counter[0] * FRAME_S if heard is not None else float("nan")


class Timed:
    """The listener's transcriber and turn model, each call timed (seconds per call)."""

    def __init__(self, listener):
        self.stt_s: list[float] = []
        self.model_s: list[float] = []
        stt, model, outer = listener.transcriber, listener.turn_model, self

        class TimedStt:
            language = getattr(stt, "language", None)

            def transcribe(self, audio):
                result = stt.transcribe(audio)
                outer.stt_s.append(result.seconds)
                return result

        listener.transcriber = TimedStt()
        if model is not None:
            listener.turn_model = self._timed(model)

    def _timed(self, model):
        def call(audio):
            t = time.perf_counter()
            p = model(audio)
            self.model_s.append(time.perf_counter() - t)
            return p
        return call


def summary(config: str, set_name: str, items: list, timed: Timed) -> dict[str, Any]:
    """One row: how many were cut, how long the rest waited after the child's last word for a sound, and for the answer.

    The first sound is the listening cue after the last word, or the answer where no cue came.
    A cue before the rest of a paused request began is "mid-request" (the child heard it, went on).
    """
    paused = "rest_s" in items[0][0]
    cut = [e < c["rest_s"] for c, e in items] if paused else [False] * len(items)
    kept = [(c, e) for (c, e), was_cut in zip(items, cut) if not was_cut and e == e]  # e != e: not heard
    waits = [e - c["last_s"] for c, e in kept]
    firsts = [min([t for t in c["cues"] if t >= c["last_s"]] + [e]) - c["last_s"] for c, e in kept]
    mid = sum(any(t < c["rest_s"] for t in c["cues"]) for c, _ in items) if paused else None
    return {
        "config": config, "set": set_name, "n": len(items), "cut": sum(cut) if paused else None,
        "first_median_s": round(statistics.median(firsts), 3) if firsts else None,
        "first_p90_s": round(float(np.percentile(firsts, 90)), 3) if firsts else None,
        "cues_mid": mid,
        "wer": round(jiwer.wer([NORMALIZE(c["text"]) for c, _ in items], [NORMALIZE(c["heard"] or "") or "-" for c, _ in items]), 3),
        "wait_median_s": round(statistics.median(waits), 3) if waits else None,
        "wait_p90_s": round(float(np.percentile(waits, 90)), 3) if waits else None,
        "wait_max_s": round(max(waits), 3) if waits else None,
        "stt_ms": round(1000 * statistics.median(timed.stt_s), 1) if timed.stt_s else None,
        "turn_model_ms": round(1000 * statistics.median(timed.model_s), 1) if timed.model_s else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--show", action="store_true", help="print each clip cut off, or with no sound back within 0.7 s")
    p.add_argument("--voices", type=int, default=len(CHILD_VOICES) + 1, help="eSpeak child voices, then Piper raised")
    p.add_argument("--limit", type=int, default=0, help="at most this many lines of each set (a quick check)")
    p.add_argument("--write-clips", metavar="DIR", help="write the v2v.py clips here and stop")
    add_json_arg(p)
    args = p.parse_args()
    if args.write_clips:
        return write_clips(args.write_clips)
    all_clips = clips(Voices(args.voices), babble(30.0, seed=3), args.limit)
    meta = machine_meta(input=f"{len(all_clips)} clips, {args.voices} voices, pause {PAUSE_S} s", inline=True)
    rows = []
    for name in args.configs.split(","):
        listener = create_listener(ListenSettings(**CONFIGS[name]), "en", EventBus())
        listener.inline = True
        timed = Timed(listener)
        results: dict[str, list] = {}
        for clip in progress(all_clips, desc=name):
            end_s = run(listener, clip)
            results.setdefault(clip["set"], []).append((clip, end_s))
            first_s = min([t for t in clip["cues"] if t >= clip["last_s"]] + [end_s]) - clip["last_s"]
            if args.show and (end_s < clip.get("rest_s", 0) or first_s > 0.7):
                print(f"  {name} {clip['set']} v{clip['voice']}: heard {clip['heard']!r}, first sound {first_s:+.2f} s,"
                      f" answered {end_s - clip['last_s']:+.2f} s")
        rows += [summary(name, set_name, items, timed) for set_name, items in results.items()]
    print_table(rows, COLUMNS, finish_meta(meta))
    write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()

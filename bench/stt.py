"""Speech-to-text benchmark: openai-whisper vs faster-whisper on the same clips and weights; and --accuracy.

    python -m bench.stt [--model tiny.en|base] [--engines faster-whisper,openai-whisper] [--clips 12] [--json out.json]
    python -m bench.stt --accuracy [--json out.json]

Clips: children's requests spoken by eSpeak NG in three voices (harness/speech_clips.py).
Latency after the end of speech = the endpointing silence (listen.end_silence_s) + transcription.

--accuracy compares what the app can choose (the story prompt, the beam, the weights: tiny.en, base)
on child-voice sets: four child-pitched eSpeak voices and Piper's voice raised, each clean and over
classroom babble at 10 dB SNR; the lines are requests, whole paused requests and short answers.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import jiwer
import numpy as np

from audio.stt import HallucinationFilter, create_transcriber
from bench.common import (
    add_json_arg,
    finish_meta,
    machine_meta,
    print_table,
    progress,
    write_json,
)
from settings import ListenSettings
from harness.speech_clips import (
    CHILD_VOICES,
    PAUSED_CHECK,
    PAUSED_REQUESTS,
    REQUESTS,
    SHORT_ANSWERS,
    VOICES,
    babble,
    espeak,
    mix_at_snr,
    piper_child,
    silence,
)

COLUMNS = [("engine", "engine"), ("model", "model"), ("transcribe_s_median", "transcribe s"),
           ("after_end_of_speech_s", "after speech s"), ("rtf_median", "RTF"), ("wer", "WER")]
NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


# (weights, story prompt, beam, temperature fallback): what --accuracy compares; the first is the app's default.
VARIANTS = [("tiny.en", True, 1, True), ("tiny.en", False, 1, True), ("tiny.en", True, 5, True),
            ("tiny.en", True, 1, False), ("base", True, 1, True), ("base", True, 5, True)]
ACCURACY_COLUMNS = [("model", "model"), ("prompt", "story prompt"), ("beam", "beam"), ("fallback", "temperature fallback"),
                    ("set", "set"), ("n", "n"),
                    ("wer", "WER"), ("transcribe_s_median", "transcribe s median"), ("transcribe_s_p90", "p90")]


def heard_all(stt, clips) -> tuple[float, list]:
    """WER over (text, samples) clips, and each clip's Transcript."""
    clips = list(clips)  # read twice below; a progress bar is read once
    results = [stt.transcribe(audio) for _, audio in clips]
    truth = [NORMALIZE(text) for text, _ in clips]
    heard = [NORMALIZE(r.text) or "<nothing>" for r in results]
    return jiwer.wer(truth, heard), results


def accuracy_sets() -> dict[str, list[tuple[str, np.ndarray]]]:
    """(text, samples) per set: child eSpeak voices and Piper raised, clean and in babble."""
    from audio.tts import PiperSynthesizer

    lines = REQUESTS + [f"{a} {b}" for a, b in PAUSED_REQUESTS + PAUSED_CHECK] + SHORT_ANSWERS
    piper = PiperSynthesizer("en", None, 160, 1.0)
    noise = babble(30.0, seed=5)
    sets: dict[str, list] = {"eSpeak child": [], "eSpeak child, babble": [], "Piper raised": [], "Piper raised, babble": []}
    k = 0
    for text in lines:
        speech_in = [("eSpeak child", espeak(text, *voice)) for voice in CHILD_VOICES]
        speech_in += [("Piper raised", piper_child(piper, text, raise_by)) for raise_by in (1.15, 1.3)]
        for name, speech in speech_in:
            sets[name].append((text, np.concatenate([silence(0.2), speech, silence(0.2)])))
            k += 1
            start = (k * 7919) % (len(noise) - len(speech) - 16000)
            mixed = mix_at_snr(speech, noise[start : start + len(speech) + 8000], 10.0, 0.25)
            sets[f"{name}, babble"].append((text, mixed))
    return sets


def accuracy(args) -> None:
    """WER and time for each (weights, prompt, beam) on each child-voice set."""
    sets = accuracy_sets()
    meta = machine_meta(input=", ".join(f"{k}: {len(v)}" for k, v in sets.items()), snr_db=10.0)
    rows = []
    for model, prompt, beam, fallback in VARIANTS:
        stt = create_transcriber(ListenSettings(model=model, story_prompt=prompt, beam_size=beam), "en")
        if not fallback:
            stt.temperature = (0.0,)
        stt.transcribe(next(iter(sets.values()))[0][1])  # warm-up
        for name, clips in progress(list(sets.items()), desc=f"{model} prompt={prompt} beam={beam} fallback={fallback}"):
            wer, results = heard_all(stt, clips)
            secs = [r.seconds for r in results]
            rows.append({"model": model, "prompt": prompt, "beam": beam, "fallback": fallback, "set": name, "n": len(clips),
                         "wer": round(wer, 3),
                         "transcribe_s_median": round(statistics.median(secs), 3),
                         "transcribe_s_p90": round(float(np.percentile(secs, 90)), 3)})
    print_table(rows, ACCURACY_COLUMNS, finish_meta(meta))
    write_json(args.json, meta, rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accuracy", action="store_true", help="compare prompt, beam and weights on child-voice sets")
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--engines", default="faster-whisper,openai-whisper", help="comma-separated engines")
    p.add_argument("--clips", type=int, default=len(VOICES) * len(REQUESTS), help="how many clips (fewer: a quick check)")
    add_json_arg(p)
    args = p.parse_args()
    if args.accuracy:
        return accuracy(args)
    settings = ListenSettings(model=args.model)
    wanted = [(voice, text) for voice in VOICES for text in REQUESTS][: args.clips]
    clips = [(text, np.concatenate([silence(0.2), espeak(text, *voice), silence(0.2)])) for voice, text in wanted]
    meta = machine_meta(input=f"{len(clips)} eSpeak clips, {min(len(VOICES), -(-len(clips) // len(REQUESTS)))} voices",
                        hallucination_filter=dataclasses.asdict(HallucinationFilter()))
    rows = []
    for engine in args.engines.split(","):
        stt = create_transcriber(settings.model_copy(update={"stt_engine": engine}), "en")
        stt.transcribe(clips[0][1])  # warm-up
        wer, results = heard_all(stt, progress(clips, desc=engine))
        secs, rtf = [r.seconds for r in results], [r.seconds / r.duration for r in results]
        rows.append({
            "engine": engine, "model": args.model,
            "transcribe_s_median": round(statistics.median(secs), 3),
            "after_end_of_speech_s": round(settings.end_silence_s + statistics.median(secs), 3),
            "rtf_median": round(statistics.median(rtf), 3),
            "wer": round(wer, 3),
        })
    print_table(rows, COLUMNS, finish_meta(meta))
    write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()

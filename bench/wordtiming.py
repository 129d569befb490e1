"""Word timings for the read-along screen: each engine's word starts against Whisper's word timestamps.

    python -m bench.wordtiming [--sentences 20] [--json out.json]

Reference: faster-whisper tiny.en with word_timestamps=True on the synthesized audio (its own
error is some tens of ms, so small figures here are at the reference's resolution). Piper is
measured with its phoneme alignments and with the estimate the app falls back to; eSpeak NG
(pyttsx3) gives no timings, so it is always estimated.
"""

from __future__ import annotations

import argparse
import re
import statistics

from bench.common import ROOT, add_json_arg, finish_meta, machine_meta, print_table, progress, write_json


def reference_starts(model, samples, rate) -> list[tuple[str, float]]:
    """Whisper's words and start times (seconds) for a clip."""
    from audio.devices import resample

    audio = resample(samples, rate, 16000)
    segments, _ = model.transcribe(audio, language="en", beam_size=1, word_timestamps=True)
    return [(w.word.strip(), w.start) for s in segments for w in (s.words or [])]


def errors(timings, reference) -> list[float]:
    """Start-time differences for words both agree on (same count, matched in order)."""
    if len(timings) != len(reference):
        return []
    return [abs(t.start - r) for t, r in zip(timings, reference, strict=True)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=20)
    add_json_arg(p)
    args = p.parse_args()
    from faster_whisper import WhisperModel

    from audio.tts import PiperSynthesizer, Pyttsx3Synthesizer
    from audio.wordtiming import estimate
    from audio.whisper_convert import packaged_ct2_dir

    corpus = ROOT.parent / "shared" / "corpus" / "stories_en.txt"
    sentences = [s.strip() for s in corpus.read_text().splitlines() if 6 <= len(s.split()) <= 16 and re.fullmatch(r"[A-Za-z ,.'!?;-]+", s.strip())]
    sentences = sentences[: args.sentences]
    whisper = WhisperModel(str(packaged_ct2_dir("tiny.en")), device="cpu", compute_type="int8")
    meta = machine_meta(input=f"{len(sentences)} English corpus sentences (letters only, 6-16 words)")
    engines = {"pyttsx3 (eSpeak NG)": Pyttsx3Synthesizer("en", None, 150, 1.0), "piper": PiperSynthesizer("en", None, 150, 1.0)}
    found: dict[str, list[float]] = {}
    skipped: dict[str, int] = {}
    for name, synth in engines.items():
        for text in progress(sentences, desc=name):
            audio = synth.synthesize(text)
            ref = [t for _, t in reference_starts(whisper, audio.samples, audio.sample_rate)]
            methods = {"estimated": estimate(text, audio.samples, audio.sample_rate)}
            if audio.words:
                methods["from the engine"] = audio.words
            for method, timings in methods.items():
                errs = errors(timings, ref)
                key = f"{name}, {method}"
                if errs:
                    found.setdefault(key, []).extend(errs)
                else:
                    skipped[key] = skipped.get(key, 0) + 1
    rows = []
    for key, errs in found.items():
        q = statistics.quantiles(errs, n=10)
        rows.append({"timings": key, "words": len(errs), "mean_ms": round(1000 * statistics.mean(errs)),
                     "median_ms": round(1000 * statistics.median(errs)), "p90_ms": round(1000 * q[8]),
                     "within_100ms": round(sum(e <= 0.1 for e in errs) / len(errs), 2), "sentences_skipped": skipped.get(key, 0)})
    print_table(rows, [("timings", "word timings"), ("words", "words"), ("mean_ms", "mean ms"), ("median_ms", "median ms"),
                       ("p90_ms", "p90 ms"), ("within_100ms", "<=100 ms"), ("sentences_skipped", "skipped")])
    write_json(args.json, finish_meta(meta), rows)


if __name__ == "__main__":
    main()

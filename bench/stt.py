"""Speech-to-text benchmark: openai-whisper vs faster-whisper on the same clips and weights.

    python bench/stt.py [--model tiny.en|base] [--engines faster-whisper,openai-whisper] [--clips 12] [--json out.json]

Clips: children's requests spoken by eSpeak NG in three voices (tests/speech_clips.py).
Latency after the end of speech = the endpointing silence (listen.end_silence_s) + transcription.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jiwer
import numpy as np

from audio.stt import Guard, create_transcriber
from bench.common import (
    add_json_arg,
    finish_meta,
    machine_meta,
    print_table,
    progress,
    write_json,
)
from settings import ListenSettings
from tests.speech_clips import REQUESTS, VOICES, espeak, silence

COLUMNS = [("engine", "engine"), ("model", "model"), ("transcribe_s_median", "transcribe s"),
           ("after_end_of_speech_s", "after speech s"), ("rtf_median", "RTF"), ("wer", "WER")]
NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--engines", default="faster-whisper,openai-whisper", help="comma-separated engines")
    p.add_argument("--clips", type=int, default=len(VOICES) * len(REQUESTS), help="how many clips (fewer: a quick check)")
    add_json_arg(p)
    args = p.parse_args()
    settings = ListenSettings(model=args.model)
    wanted = [(voice, text) for voice in VOICES for text in REQUESTS][: args.clips]
    clips = [(text, np.concatenate([silence(0.2), espeak(text, *voice), silence(0.2)])) for voice, text in wanted]
    meta = machine_meta(input=f"{len(clips)} eSpeak clips, {min(len(VOICES), -(-len(clips) // len(REQUESTS)))} voices",
                        guard=dataclasses.asdict(Guard()))
    rows = []
    for engine in args.engines.split(","):
        stt = create_transcriber(settings.model_copy(update={"stt_engine": engine}), "en")
        stt.transcribe(clips[0][1])  # warm-up
        secs, rtf, truth, heard = [], [], [], []
        for text, audio in progress(clips, desc=engine):
            result = stt.transcribe(audio)
            secs.append(result.seconds)
            rtf.append(result.seconds / result.duration)
            truth.append(NORMALIZE(text))
            heard.append(NORMALIZE(result.text) or "<nothing>")
        rows.append({
            "engine": engine, "model": args.model,
            "transcribe_s_median": round(statistics.median(secs), 3),
            "after_end_of_speech_s": round(settings.end_silence_s + statistics.median(secs), 3),
            "rtf_median": round(statistics.median(rtf), 3),
            "wer": round(jiwer.wer(truth, heard), 3),
        })
    print_table(rows, COLUMNS, finish_meta(meta))
    write_json(args.json, meta, rows)


if __name__ == "__main__":
    main()

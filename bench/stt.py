"""Speech-to-text benchmark: openai-whisper vs faster-whisper on the same clips and weights.

    python bench/stt.py [--model tiny.en|base] [--json out.json]

Clips: children's requests spoken by eSpeak NG in three voices (tests/speech_clips.py).
Latency after the end of speech = the endpointing silence (listen.end_silence_s) + transcription.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jiwer  # noqa: E402
import numpy as np  # noqa: E402

from audio.stt import Guard, create_transcriber  # noqa: E402
from settings import ListenSettings  # noqa: E402
from tests.speech_clips import REQUESTS, VOICES, espeak, silence  # noqa: E402

NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny.en")
    p.add_argument("--json")
    args = p.parse_args()
    settings = ListenSettings(model=args.model)
    clips = [(text, np.concatenate([silence(0.2), espeak(text, *voice), silence(0.2)])) for voice in VOICES for text in REQUESTS]
    rows = []
    for engine in ("faster-whisper", "openai-whisper"):
        stt = create_transcriber(settings.model_copy(update={"stt_engine": engine}), "en")
        stt.transcribe(clips[0][1])  # warm-up
        secs, rtf, truth, heard = [], [], [], []
        for text, audio in clips:
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
    meta = {"date": str(date.today()), "machine": platform.machine(), "input": f"{len(clips)} eSpeak clips, 3 voices",
            "guard": dataclasses.asdict(Guard())}
    print(f"{'engine':16} {'model':8} {'transcribe s':>12} {'after speech s':>15} {'RTF':>6} {'WER':>6}")
    for r in rows:
        print(f"{r['engine']:16} {r['model']:8} {r['transcribe_s_median']:>12} {r['after_end_of_speech_s']:>15} {r['rtf_median']:>6} {r['wer']:>6}")
    print(meta)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

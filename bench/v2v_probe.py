"""What the child heard back, read from v2v.py's saved probe recording (harness/probe_recording.py), per set of clips.

    python ../shared/tools/v2v.py measure ... --json run.json --save-wav run.wav CLIPS
    python -m bench.v2v_probe run.wav run.json
"""

from __future__ import annotations

import argparse
import json

from bench.common import print_table
from harness.probe_recording import clips, summary

COLUMNS = [("set", "set"), ("n", "n"), ("first_median_ms", "first sound median ms"), ("first_p90_ms", "first sound p90 ms"),
           ("cue_first", "cue first"), ("answer_median_ms", "answer median ms"), ("answer_p90_ms", "answer p90 ms"),
           ("cued_mid", "clips with a cue mid-request")]


def main() -> None:
    import soundfile as sf

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("wav", help="v2v.py measure --save-wav: the stereo probe recording")
    p.add_argument("results", help="v2v.py measure --json: the clips in the order played (warm-ups first)")
    args = p.parse_args()
    data, rate = sf.read(args.wav, dtype="float32")
    played = json.load(open(args.results))["clips"]
    found = clips(data[:, 0], data[:, 1], rate)
    if len(found) != len(played):
        raise SystemExit(f"{len(found)} child clips in the recording, {len(played)} played: read them by hand")
    by_set: dict[str, list] = {}
    for clip, row in zip(played, found):
        if clip["warmup"] or row is None:
            continue
        by_set.setdefault(clip["clip"].rsplit(".", 1)[0].rstrip("0123456789"), []).append(row)
    print_table([summary(name, items) for name, items in by_set.items()], COLUMNS)


if __name__ == "__main__":
    main()

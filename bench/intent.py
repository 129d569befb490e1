"""What the child asks, routed right: the meaning classifier and the cue phrases on held-out requests.

    python -m bench.intent [--heldout bench/data/intent_heldout.tsv] [--json out.json]

The held-out set (lang, label, text; every request comes after a story was told) was written by
someone who saw neither the training files (llm/data/) nor the cue phrases, and nothing was tuned
on it; any file in the same format can be given with --heldout. "Routed right" is the mode the
turn is answered in (a question about the story and one about the world are both answered as a
question); the label accuracy is reported beside it.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import defaultdict
from pathlib import Path

from bench.common import ROOT, add_json_arg, finish_meta, machine_meta, print_table, write_json
from llm.intent import LABELS, Context, IntentRouter

DEFAULT_HELDOUT = ROOT / "bench" / "data" / "intent_heldout.tsv"


def read_heldout(path: Path) -> list[tuple[str, str, str]]:
    """(lang, label, text) rows of a held-out TSV."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [(r["lang"], r["label"], r["text"].strip()) for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    unknown = {label for _, label, _ in rows if label not in LABELS}
    if unknown:
        raise SystemExit(f"{path}: unknown labels {sorted(unknown)}")
    return rows


def score(router: IntentRouter, rows: list[tuple[str, str, str]]) -> tuple[list[dict], list[dict], dict, list[dict]]:
    """Rows per language and per label (mode and label accuracy), milliseconds per decision, and the misses."""
    per_lang, per_label = defaultdict(lambda: [0, 0, 0]), defaultdict(lambda: [0, 0])
    times, shared, misses = [], [], []
    for lang, label, text in rows:
        t0 = time.perf_counter()
        decision = router.decide(text, Context(has_story=True))
        t1 = time.perf_counter()
        router.decide(text, Context(has_story=True))  # as in the app: the safety check has read the words already
        times.append(t1 - t0)
        shared.append(time.perf_counter() - t1)
        mode_ok, label_ok = decision.mode is LABELS[label], decision.label == label
        for key in (lang, "all"):
            per_lang[key][0] += 1
            per_lang[key][1] += mode_ok
            per_lang[key][2] += label_ok
        per_label[label][0] += 1
        per_label[label][1] += mode_ok
        if not mode_ok:
            misses.append({"lang": lang, "label": label, "text": text, "got": decision.label})
    by_lang = [{"router": router.by, "language": k, "requests": n, "routed_right_pct": round(100 * m / n, 1),
                "label_right_pct": round(100 * lab / n, 1)} for k, (n, m, lab) in sorted(per_lang.items())]
    by_label = [{"router": router.by, "label": k, "requests": n, "routed_right_pct": round(100 * m / n, 1)}
                for k, (n, m) in sorted(per_label.items())]
    return by_lang, by_label, {"ms_median": median_ms(times), "ms_p90": p90_ms(times), "shared_ms_median": median_ms(shared)}, misses


def median_ms(values: list[float]) -> float:
    return round(1000 * sorted(values)[len(values) // 2], 2)


def p90_ms(values: list[float]) -> float:
    return round(1000 * sorted(values)[int(len(values) * 0.9)], 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heldout", type=Path, default=DEFAULT_HELDOUT, help="a TSV: lang, label, text")
    p.add_argument("--patterns-only", action="store_true", help="the cue phrases alone (no encoder)")
    p.add_argument("--misses", action="store_true", help="print every request routed wrong")
    add_json_arg(p)
    args = p.parse_args()
    meta = machine_meta(input=f"held-out {args.heldout}")
    rows = read_heldout(args.heldout)
    routers = [IntentRouter()]
    if not args.patterns_only:
        routers.append(IntentRouter.with_own_encoder())
    by_lang, by_label, timing, misses = [], [], {}, {}
    for router in routers:
        lang_rows, label_rows, timing[router.by], misses[router.by] = score(router, rows)
        by_lang += lang_rows
        by_label += label_rows
    print(f"held-out: {args.heldout} ({len(rows)} requests, each after a story)")
    print_table(by_lang, [("router", "router"), ("language", "lang"), ("requests", "requests"),
                          ("routed_right_pct", "routed right %"), ("label_right_pct", "label right %")])
    print()
    print_table(by_label, [("router", "router"), ("label", "label"), ("requests", "requests"), ("routed_right_pct", "routed right %")])
    print()
    for by, t in timing.items():
        # The meaning router's first time is the encoder's forward pass; in the app the safety check
        # has already made it (the encoder keeps it), so routing adds only the classifier's product.
        print(f"{by}: {t['ms_median']} ms a decision with its own encoder pass (median), p90 {t['ms_p90']} ms; "
              f"{t['shared_ms_median']} ms after the safety check's pass")
    if args.misses:
        for by, missed in misses.items():
            print(f"\n{by}, routed wrong:")
            for m in missed:
                print(f"  [{m['lang']}] {m['label']} -> {m['got']}: {m['text']}")
    write_json(args.json, finish_meta(meta), by_lang, labels=by_label, timing=timing, misses=misses)


if __name__ == "__main__":
    main()

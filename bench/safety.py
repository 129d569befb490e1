"""Safety rule layer: blocked rate on real children's stories per age group, and misses on the test tables.

    python bench/safety.py [--corpus ../shared/corpus] [--json out.json]

The corpus (Aesop, Grimm, Andersen, Kipling, Barrie, TinyStories, Perrault, the 1857 Grimm;
sources in its SOURCES file) is ordinary story text written by nobody here: every sentence it
blocks is a false positive by the measure of the issue, though some are classic peril the policy
keeps from young children on purpose. The tables give the miss rate: tests/safety_cases.py was
written beside the rules; tests/safety_heldout.py by someone who never saw the word lists.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, add_json_arg, finish_meta, machine_meta, print_table, write_json  # noqa: E402
from safety.guard import AGE_POLICY, SafetyGuard  # noqa: E402
from tests import safety_cases, safety_heldout  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"


def corpus_rows(corpus: Path) -> list[dict]:
    """Blocked share of the corpus sentences per language and age group, with the categories."""
    rows = []
    for language in ("en", "fr", "de"):
        path = corpus / f"stories_{language}.txt"
        if not path.is_file():
            continue
        sentences = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for age in AGE_POLICY:
            guard = SafetyGuard(age, language)
            t0 = time.perf_counter()
            verdicts = [guard.check_output(s) for s in sentences]
            ms = 1000 * (time.perf_counter() - t0) / len(sentences)
            blocked = Counter(v.category for v in verdicts if not v.ok)
            rows.append({"language": language, "age_group": age, "sentences": len(sentences),
                         "blocked": sum(blocked.values()), "blocked_pct": round(100 * sum(blocked.values()) / len(sentences), 2),
                         "by_category": ", ".join(f"{k} {n}" for k, n in blocked.most_common()), "ms_per_sentence": round(ms, 3)})
    return rows


def table_rows() -> list[dict]:
    """Misses (unsafe let through) and false positives on the test tables, at Early Elementary."""
    tables = {
        "cases": (safety_cases.UNSAFE_OUTPUTS, safety_cases.SAFE_OUTPUTS, safety_cases.UNSAFE_INPUTS, safety_cases.SAFE_INPUTS),
        "held-out": (safety_heldout.HELDOUT_UNSAFE_OUTPUTS, safety_heldout.HELDOUT_SAFE_OUTPUTS,
                     safety_heldout.HELDOUT_UNSAFE_INPUTS, safety_heldout.HELDOUT_SAFE_INPUTS),
    }
    rows = []
    for table, (unsafe_out, safe_out, unsafe_in, safe_in) in tables.items():
        for side, unsafe, safe in (("output", unsafe_out, safe_out), ("input", unsafe_in, safe_in)):
            for language in ("en", "fr", "de"):
                guard = SafetyGuard("Early Elementary", language)
                check = guard.check_output if side == "output" else guard.check_input
                u = [t for lang, t, _ in unsafe if lang == language]
                s = [t for lang, t, _ in safe if lang == language]
                rows.append({"table": table, "side": side, "language": language, "unsafe": len(u),
                             "missed": sum(1 for t in u if check(t).ok), "safe": len(s),
                             "false_positives": sum(1 for t in s if not check(t).ok)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    add_json_arg(p)
    args = p.parse_args()
    meta = machine_meta(input=f"corpus {args.corpus}, tables tests/safety_cases.py and tests/safety_heldout.py")
    corpus = corpus_rows(args.corpus)
    tables = table_rows()
    print_table(corpus, [("language", "lang"), ("age_group", "age group"), ("sentences", "sentences"), ("blocked", "blocked"),
                         ("blocked_pct", "blocked %"), ("by_category", "categories"), ("ms_per_sentence", "ms/sentence")])
    print()
    print_table(tables, [("table", "table"), ("side", "side"), ("language", "lang"), ("unsafe", "unsafe"), ("missed", "missed"),
                         ("safe", "safe"), ("false_positives", "false positives")])
    write_json(args.json, finish_meta(meta), corpus + tables)


if __name__ == "__main__":
    main()

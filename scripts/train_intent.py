"""Train the intent router's classifier on llm/data/intent_train_*.tsv and write llm/data/intent.npz.

    python -m scripts.train_intent [--out llm/data/intent.npz]

The features are the safety meaning layer's (the same encoder, template and layers), so at run
time one forward pass over the child's words serves the safety check and the router; they are
cached with the safety corpus's features. A fifth of the corpus (by a hash of the text) is the dev
split, reported here; bench/data/intent_heldout.tsv is never read by this script.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm.intent import LABELS, WEIGHTS
from safety.semantic import WEIGHTS as SAFETY_WEIGHTS
from safety.semantic import Head
from scripts.train_safety import features, is_dev, predict, train

DATA = Path(__file__).resolve().parent.parent / "llm" / "data"


@dataclass(frozen=True)
class Example:
    """One labelled utterance."""

    language: str
    label: str
    text: str


def load_examples(folder: Path = DATA) -> list[Example]:
    """Every intent_train_<lang>.tsv in the folder (header: label, text)."""
    rows = []
    for path in sorted(folder.glob("intent_train_*.tsv")):
        language = path.stem.rsplit("_", 1)[1]
        with path.open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if row["label"] not in LABELS:
                    raise SystemExit(f"{path}: unknown label {row['label']!r}")
                rows.append(Example(language, row["label"], row["text"].strip()))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(WEIGHTS))
    args = parser.parse_args()
    # The safety meaning layer's encoder and layers: one forward pass of the child's words serves both.
    safety = Head(SAFETY_WEIGHTS, "the safety meaning layer", "run python -m scripts.train_safety first")
    rows = load_examples()
    classes = sorted(LABELS)
    y = np.array([classes.index(r.label) for r in rows])
    per_layer = features(rows, safety.layers, safety.encoder)
    x = np.concatenate([per_layer[layer] for layer in safety.layers], axis=1)
    dev = np.array([is_dev(r.text) for r in rows])
    weights = train(x[~dev], y[~dev], len(classes))
    guess = predict(weights, x[dev]).argmax(1)
    langs = np.array([r.language for r in rows])[dev]
    print(f"dev split: {int(dev.sum())} of {len(rows)}; accuracy {float((guess == y[dev]).mean()):.3f}")
    for language in sorted(set(langs)):
        mask = langs == language
        print(f"  {language}: {float((guess[mask] == y[dev][mask]).mean()):.3f} ({int(mask.sum())})")
    confused: dict[str, int] = {}
    for g, t in zip(guess, y[dev]):
        if g != t:
            key = f"{classes[t]} -> {classes[g]}"
            confused[key] = confused.get(key, 0) + 1
    print("  most confused:", ", ".join(f"{k} {v}" for k, v in sorted(confused.items(), key=lambda kv: -kv[1])[:6]))
    final = train(x, y, len(classes))  # what ships: every example, the settings checked on the dev split
    np.savez(args.out, classes=np.array(classes), layers=np.array(safety.layers), thresholds=np.array(json.dumps({})),
             encoder=np.array(safety.encoder),
             **{k: v.astype(np.float32) for k, v in final.items()})
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

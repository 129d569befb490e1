"""The labelled safety sentences (safety/data/train_*.tsv, bench/data/safety_heldout.tsv): reading and labels."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

FIELDS = ("lang", "side", "category", "level", "text")
LEVELS = ("safe", "older", "unsafe")
# Concerns only a child's words can carry: they are answered with care or a redirect, not masked.
INPUT_ONLY = ("disclosure", "jailbreak")


@dataclass(frozen=True)
class Row:
    """One labelled sentence: said by the storyteller (output) or by a child (input)."""

    lang: str
    side: str
    category: str
    level: str
    text: str


def read_tsv(path: Path) -> list[Row]:
    """Rows of one file (header lang, side, category, level, text); a malformed row is an error naming its line."""
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if tuple(header or ()) != FIELDS:
            raise ValueError(f"{path}: the first line must be {' / '.join(FIELDS)} (tab-separated)")
        for n, fields in enumerate(reader, start=2):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) != len(FIELDS) or fields[3] not in LEVELS:
                raise ValueError(f"{path}:{n}: expected 5 tab-separated fields with a level of {', '.join(LEVELS)}")
            rows.append(Row(*(field.strip() for field in fields)))
    return rows


def load_rows(folder: Path, pattern: str = "train_*.tsv") -> list[Row]:
    """Every row of the matching files, in file order, each text once."""
    seen, rows = set(), []
    for path in sorted(folder.glob(pattern)):
        for row in read_tsv(path):
            if row.text not in seen:
                seen.add(row.text)
                rows.append(row)
    return rows


def label_of(row: Row) -> str:
    """The class the meaning layer learns: safe, older, unsafe:<category>, disclosure or jailbreak."""
    if row.category in INPUT_ONLY and row.level == "unsafe":
        return row.category
    if row.level == "unsafe":
        return f"unsafe:{row.category}"
    return row.level

"""Pick story sentences from local public-domain texts (manifest TSV) and write safety/data/train_<lang>_pd.tsv rows."""

from __future__ import annotations

import argparse
import csv
import glob
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from safety.corpus import FIELDS

ABBREV = {
    "en": {"Mr", "Mrs", "Dr", "St", "Mt", "Jr", "Sr", "Capt", "Col", "Gen", "Rev", "Lieut", "Messrs", "Prof", "Esq"},
    "fr": {"M", "MM", "Mme", "Mmes", "Mlle", "Mlles", "Dr", "St", "Ste", "Mgr", "etc"},
    "de": {"Hr", "Herr", "Fr", "Frl", "Dr", "St", "Nr", "bzw", "vgl", "ca", "usw", "etc", "z", "u", "d", "s"},
}
CLOSERS = "\"'”’»«“"
OPENERS = {"en": "\"“‘'(", "fr": "«\"“—–(", "de": "»„‚“\"—–("}
QUOTES = {"en": [("“", "”")], "fr": [("«", "»"), ("“", "”")], "de": [("»", "«"), ("„", "“")], "de_en": [("»", "«"), ("“", "”")]}
BANNED_WORDS = re.compile(
    r"gutenberg|chapter|chapitre|kapitel|grimm|andersen|perrault|aesop|ésope|äsop|kipling|peter pan|barrie|tinystories",
    re.I,
)
END_OK = re.compile(r"[.!?][" + CLOSERS + r"]?$")


def tei_paragraphs(path: str) -> list[str]:
    """<p> texts in a TEI body, notes left out."""
    ns = "{http://www.tei-c.org/ns/1.0}"
    root = ET.parse(path).getroot()

    def text_of(el: ET.Element) -> str:
        parts = [el.text or ""]
        for child in el:
            if child.tag not in (ns + "note", ns + "fw"):
                parts.append(text_of(child))
            parts.append(child.tail or "")
        return "".join(parts)

    body = root.find(f"{ns}text/{ns}body")
    return [text_of(p) for p in body.iter(ns + "p")] if body is not None else []


def xhtml_paragraphs(path: str) -> list[str]:
    """<p> texts of a Standard Ebooks chapter, leaving out verse, letters, headers and line-broken paragraphs."""
    ns = "{http://www.w3.org/1999/xhtml}"
    root = ET.parse(path).getroot()
    skip = {ns + t for t in ("blockquote", "header", "hgroup", "figure", "table", "h2", "h3", "h4", "footer")}
    out: list[str] = []

    def walk(el: ET.Element) -> None:
        if el.tag in skip:
            return
        if el.tag == ns + "p":
            if el.find(f".//{ns}br") is None:
                out.append("".join(el.itertext()))
            return
        for child in el:
            walk(child)

    walk(root)
    return out


def pgtxt_paragraphs(path: str, opts: dict) -> list[str]:
    """Blank-line paragraphs of a Project Gutenberg text; indented (verse, headings), bracketed and title-like ones left out.

    opts: start (the paragraph after which the story begins), end (the start of the paragraph where it stops),
    titles (section titles) and skip (titles whose sections are left out).
    """
    text = Path(path).read_text(encoding="utf-8").replace("\r", "")
    paras, titles, skip = [], set(opts.get("titles", [])), set(opts.get("skip", []))
    started, skipping = "start" not in opts, False
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        flat = " ".join(ln.strip() for ln in lines)
        head = re.sub(r"[_+]", "", flat).rstrip(".").strip()
        if not started:
            started = head == opts["start"]
            continue
        if "end" in opts and head.startswith(opts["end"]):
            break
        if head in titles:
            skipping = head in skip
            continue
        if skipping or any(ln.startswith("  ") for ln in lines) or "[" in flat:
            continue
        if len(lines) == 1 and len(flat.split()) < 8 and not re.search(r"[,;:!?»«„“\"]", flat):
            continue
        paras.append(flat)
    return paras


def clean(text: str) -> str:
    """Markup marks (_ + =) removed, dashes and whitespace normalised."""
    text = re.sub(r"[_+=\u00ad\u2060]", "", text).replace("\u2010", "-").replace("--", "—")
    return re.sub(r"\s+", " ", text).strip()


def split_sentences(para: str, lang: str) -> list[str]:
    """Sentences of one paragraph: a break after . ! ? (and closing quotes) before a capital or an opening quote."""
    opener = re.escape(OPENERS[lang])
    pattern = re.compile(r"([.!?]+[" + CLOSERS + r"]*)(\s+)(?=[" + opener + r"]?\s?[A-ZÀ-ÖØ-Þ])")
    out, start = [], 0
    for m in pattern.finditer(para):
        before = para[start:m.start(1)]
        word = re.search(r"(\w+)$", before)
        if m.group(1) == "." and word and (word.group(1) in ABBREV[lang] or re.fullmatch(r"[A-Z]", word.group(1))):
            continue
        out.append(para[start:m.end(1)].strip())
        start = m.end()
    out.append(para[start:].strip())
    return out


def paired(s: str, o: str, c: str) -> bool:
    """True when every closing quote follows its opening one and none is left open."""
    depth = 0
    for ch in s:
        depth += (ch == o) - (ch == c)
        if depth < 0:
            return False
    return depth == 0


def balance(s: str, pairs: list[tuple[str, str]]) -> str | None:
    """The sentence with a stray leading opener or trailing closer dropped, or None when its quotes do not pair up."""
    for o, c in pairs:
        if paired(s, o, c):
            continue
        if s.startswith(o) and paired(s[1:], o, c):
            s = s[1:].lstrip()
        elif s.endswith(c) and paired(s[:-1], o, c):
            s = s[:-1].rstrip()
        else:
            return None
    if s.count('"') % 2 or not all(paired(s, o, c) for o, c in pairs):
        return None
    return s


def acceptable(s: str, lang: str, pairs: list[tuple[str, str]]) -> str | None:
    """The sentence, tidied, when it passes the shape filters; else None."""
    s = re.sub(r"^[—–-]\s*", "", s).strip()
    if lang == "fr":
        s = re.sub(r"«\s+", "«", re.sub(r"\s+»", "»", s))
        if s.startswith("«") and s.endswith("»") and paired(s[1:-1], "«", "»"):
            s = re.sub(r"^[—–-]\s*", "", s[1:-1].strip())
    s = balance(s, pairs)
    s = re.sub(r"^[—–-]\s*", "", s) if s else s
    if not s or not END_OK.search(s) or s.endswith("..") or re.search(r"[\[\]_*\d|/&<>{}…]", s):
        return None
    first = s.lstrip(OPENERS[lang] + " ")[:1]
    if not first or not first.isupper() or BANNED_WORDS.search(s):
        return None
    if not 4 <= len(s.split()) <= 40 or re.search(r"\b[A-ZÄÖÜ]{4,}\b", s):
        return None
    return s


def work_sentences(files: list[str], fmt: str, lang: str, opts: dict) -> list[str]:
    """Every acceptable sentence of one work, in reading order."""
    out, pairs = [], QUOTES[opts.get("quotes", lang)]
    for f in files:
        paras = {"tei": tei_paragraphs, "xhtml": xhtml_paragraphs}[fmt](f) if fmt != "pgtxt" else pgtxt_paragraphs(f, opts)
        for para in paras:
            for s in split_sentences(clean(para), lang):
                s = acceptable(s, lang, pairs)
                if s:
                    out.append(s)
    return out


def spread(items: list[str], k: int) -> list[str]:
    """k items taken evenly across the list (all when it is shorter)."""
    if len(items) <= k:
        return list(items)
    return [items[int((i + 0.5) * len(items) / k)] for i in range(k)]


def natural_key(path: str) -> list:
    """Sort key that orders chapter-2 before chapter-10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("manifest", help="TSV: lang slug title author repo commit path fmt limit opts(json) local_glob")
    ap.add_argument("--labels", help="TSV: text, category, level (level 'drop' leaves the sentence out)")
    ap.add_argument("--out", default="safety/data", help="folder for train_<lang>_pd.tsv")
    ap.add_argument("--candidates", help="also write lang, slug, text of every picked sentence here")
    args = ap.parse_args(argv)

    labels = {}
    if args.labels:
        with open(args.labels, encoding="utf-8") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                if len(row) == 3 and not row[0].startswith("#"):
                    labels[row[0]] = (row[1], row[2])
    with open(args.manifest, encoding="utf-8") as f:
        works = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if not r["lang"].startswith("#")]

    seen: set[str] = set()
    by_lang: dict[str, list[tuple[str, str, str, str]]] = {}
    for w in works:
        files = sorted(glob.glob(w["local_glob"]), key=natural_key)
        sentences = []
        for s in work_sentences(files, w["fmt"], w["lang"], json.loads(w["opts"] or "{}")):
            key = re.sub(r"\W+", " ", s.lower()).strip()
            if key not in seen:
                seen.add(key)
                sentences.append(s)
        picked = spread(sentences, int(w["limit"]))
        print(f"{w['lang']} {w['slug']}: {len(files)} files, {len(sentences)} sentences, {len(picked)} picked", file=sys.stderr)
        for s in picked:
            category, level = labels.get(s, ("none", "safe"))
            by_lang.setdefault(w["lang"], []).append((w["slug"], category, level, s))

    if args.candidates:
        with open(args.candidates, "w", encoding="utf-8") as f:
            for lang, rows in by_lang.items():
                f.writelines(f"{lang}\t{slug}\t{s}\n" for slug, _, _, s in rows)
    for lang, rows in by_lang.items():
        kept = [(c, lv, s) for _, c, lv, s in rows if lv != "drop"]
        with open(Path(args.out) / f"train_{lang}_pd.tsv", "w", encoding="utf-8", newline="") as f:
            f.write("\t".join(FIELDS) + "\n")
            f.writelines(f"{lang}\toutput\t{c}\t{lv}\t{s}\n" for c, lv, s in kept)
        print(f"{lang}: {len(kept)} rows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

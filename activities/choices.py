"""Choice points: the story stops at a question with two options and goes on along the child's pick."""

from __future__ import annotations

import re
from typing import Optional

import lang
from safety.rules import normalize

# Added to the request when the story should stop at a choice (the model writes in the child's language).
INSTRUCTION = (
    " Stop the story at an exciting moment of choice, and end your reply with one question that offers "
    "the child exactly two options joined by 'or', like: 'Should Benny go into the cave, or follow the river?'"
)


def parse_choice(sentence: str, language: str) -> Optional[tuple[str, str]]:
    """The two options of a choice question ("Should Benny go into the cave, or follow the river?")."""
    text = sentence.strip()
    if not text.endswith("?"):
        return None
    choice = lang.get(language)
    parts = re.split(rf",?\s+{choice.choice_or}\s+", text.rstrip("?").strip(), flags=re.IGNORECASE)
    if len(parts) != 2:
        return None
    first = re.sub(choice.choice_stem, "", parts[0].strip(), count=1, flags=re.IGNORECASE).strip(" ,")
    second = parts[1].strip(" ,")
    if not first or not second or len(first.split()) > 12 or len(second.split()) > 12:
        return None
    return first, second


def _words(text: str, language: str) -> set[str]:
    stop = lang.get(language).choice_stop_words
    return {w for w in re.findall(r"[a-z0-9']+", normalize(text)) if w not in stop}


def match_choice(answer: str, options: tuple[str, str], language: str) -> Optional[int]:
    """Which option the child picked (0 or 1), by ordinal ("the first one") or by distinctive words; None if unclear."""
    said = normalize(answer)
    first_ord, second_ord = (re.search(p, said) is not None for p in lang.get(language).choice_ordinals)
    if first_ord != second_ord:
        return 0 if first_ord else 1
    a, b = (_words(o, language) for o in options)
    heard = _words(answer, language)
    # Only words that tell the options apart count; stems cover "rivers" for "river".
    score = [sum(1 for w in opt - other if any(h[:4] == w[:4] and len(h) >= 3 for h in heard)) for opt, other in ((a, b), (b, a))]
    if score[0] == score[1]:
        return None
    return 0 if score[0] > score[1] else 1

"""Choice points: the story stops at a question with two options and goes on along the child's pick."""

from __future__ import annotations

import re
from typing import Optional

from safety.rules import normalize

# Added to the request when the story should stop at a choice (the model writes in the child's language).
INSTRUCTION = (
    " Stop the story at an exciting moment of choice, and end your reply with one question that offers "
    "the child exactly two options joined by 'or', like: 'Should Benny go into the cave, or follow the river?'"
)
ASK_TO_CHOOSE = {  # the child asks to steer the story
    "en": r"let me (choose|decide|pick)|i want to (choose|decide|pick)|can i (choose|decide|pick)",
    "fr": r"je (veux|peux) choisir|laisse[- ]moi choisir|je choisis",
    "de": r"ich (will|mochte|darf) (wahlen|entscheiden|aussuchen)|lass mich (wahlen|entscheiden)",
}
_OR = {"en": "or", "fr": "ou", "de": "oder"}
_STEM = {  # how a choice question starts, before the first option
    "en": r"^(what|which)\b.*?\b(should|will|would)\s+\w+\s+(do|choose)\b[:,]?\s*|^(should|will|would|shall|could|can|does|do|must)\s+(the\s+|a\s+|little\s+|\w+'s\s+)*\w+\s+",
    "fr": r"^(est-ce que|est-ce qu')\s*(le |la |les |l')?\w+\s+(doit|devrait|va)\s+|^(doit|devrait|va)[- ]t?-?(il|elle)\s+|^faut-il\s+",
    "de": r"^(soll|sollte|sollen|will|mochte|wird)\s+(der |die |das |den |dem |ein |eine |kleine |kleiner )*\w+\s+",
}
_ORDINALS = {
    "en": (r"\b(first|number one|1)\b", r"\b(second|two|2|the second one|other one|number two|last one)\b"),
    "fr": (r"\b(premier|premiere|1)\b", r"\b(deuxieme|second|seconde|l'autre|deux|2)\b"),
    "de": (r"\b(erste|ersten|erstes|1)\b", r"\b(zweite|zweiten|zweites|andere|zwei|2)\b"),
}
_STOP = {
    "en": set("a an the to go into in on at he she they it should will would and or".split()),
    "fr": set("un une le la les l de du des aller dans sur il elle ou et doit devrait va".split()),
    "de": set("ein eine der die das den dem in im auf zu gehen soll sollte er sie es oder und".split()),
}


def parse_choice(sentence: str, language: str) -> Optional[tuple[str, str]]:
    """The two options of a choice question ("Should Benny go into the cave, or follow the river?")."""
    text = sentence.strip()
    if not text.endswith("?"):
        return None
    parts = re.split(rf",?\s+{_OR[language]}\s+", text.rstrip("?").strip(), flags=re.IGNORECASE)
    if len(parts) != 2:
        return None
    first = re.sub(_STEM[language], "", parts[0].strip(), count=1, flags=re.IGNORECASE).strip(" ,")
    second = parts[1].strip(" ,")
    if not first or not second or len(first.split()) > 12 or len(second.split()) > 12:
        return None
    return first, second


def _words(text: str, language: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", normalize(text)) if w not in _STOP[language]}


def match_choice(answer: str, options: tuple[str, str], language: str) -> Optional[int]:
    """Which option the child picked (0 or 1), by ordinal ("the first one") or by distinctive words; None if unclear."""
    said = normalize(answer)
    first_ord, second_ord = (re.search(p, said) is not None for p in _ORDINALS[language])
    if first_ord != second_ord:
        return 0 if first_ord else 1
    a, b = (_words(o, language) for o in options)
    heard = _words(answer, language)
    # Only words that tell the options apart count; stems cover "rivers" for "river".
    score = [sum(1 for w in opt - other if any(h[:4] == w[:4] and len(h) >= 3 for h in heard)) for opt, other in ((a, b), (b, a))]
    if score[0] == score[1]:
        return None
    return 0 if score[0] > score[1] else 1

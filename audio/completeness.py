"""Whether the words of a turn so far sound finished: the words' side of the end-of-turn decision.

A child who stops mid-sentence to find a word ("Tell me a story about ... a dragon") pauses after
a word that cannot end a request: a conjunction, an article, a preposition, a filler, a relative
pronoun, a verb still waiting for its object. Pure and time-free: the listener asks it about the
transcript of the turn so far at the first pause, and keeps listening while it says "unfinished".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words after which a sentence cannot end, per language (lower case; matched on the last word).
# Written from grammar, not from any test set: function words that always need what follows.
_OPEN_ENDINGS = {
    "en": {
        "and", "or", "but", "so", "because", "cause", "if", "when", "while", "than", "then",
        "the", "a", "an", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some",
        "about", "of", "with", "without", "to", "for", "in", "on", "at", "from", "into", "onto", "by", "like", "after",
        "before", "under", "over", "behind", "near",
        "who", "which", "whose", "where",
        "um", "uh", "er", "erm", "hmm", "mm", "uhm",
        "is", "are", "was", "were", "be", "can", "could", "would", "will", "should", "do", "does", "did",
        "want", "wants", "wanna", "need", "tell", "give", "make", "very", "really", "more", "most",
    },
    "fr": {
        "et", "ou", "mais", "donc", "car", "parce", "que", "qu", "quand", "si", "comme", "alors", "puis",
        "le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "ce", "cet", "cette", "ces",
        "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses", "notre", "votre", "leur",
        "à", "au", "aux", "avec", "sans", "pour", "sur", "sous", "dans", "chez", "vers", "par", "entre", "après", "avant",
        "qui", "dont", "où", "lequel", "laquelle",
        "euh", "heu", "ben", "bah", "hum", "hmm", "genre",
        "est", "sont", "était", "veux", "voudrais", "peux", "raconte", "très", "plus",
    },
    "de": {
        "und", "oder", "aber", "weil", "dass", "denn", "wenn", "als", "ob", "sondern", "dann",
        "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines",
        "mein", "meine", "meinen", "dein", "deine", "sein", "seine", "ihr", "ihre", "unser", "unsere",
        "über", "von", "vom", "mit", "ohne", "zu", "zum", "zur", "für", "in", "im", "auf", "an", "am", "aus", "bei",
        "nach", "vor", "unter", "hinter", "neben", "durch", "gegen",
        "welcher", "welche", "welches", "wo", "dessen", "deren",
        "äh", "ähm", "öh", "hm", "hmm", "also", "halt",
        "ist", "sind", "war", "will", "möchte", "kann", "erzähl", "sehr", "noch",
    },
}
# Of those, the ones a question cannot end on either. A question may end on a preposition ("What is it
# about?") or a verb ("Can you?"), but not on an article, a conjunction or a relative pronoun: "Tell me
# about a robot who?" is Whisper's rising guess at a child's pause. ("Und dann?", "Et après ?" end.)
_OPEN_EVEN_IN_A_QUESTION = {
    "en": {"and", "or", "but", "because", "if", "the", "a", "an", "my", "your", "his", "her", "our", "their",
           "who", "which", "whose", "um", "uh", "er", "erm", "uhm"},
    "fr": {"et", "ou", "mais", "parce", "le", "la", "les", "l", "un", "une", "des", "du", "d", "mon", "ma", "mes",
           "ton", "ta", "tes", "son", "sa", "ses", "qui", "dont", "lequel", "laquelle", "euh", "heu"},
    "de": {"und", "oder", "aber", "weil", "dass", "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen",
           "einem", "einer", "eines", "mein", "meine", "dein", "deine", "welcher", "welche", "welches", "dessen",
           "deren", "äh", "ähm", "öh"},
}
# A hesitation Whisper writes out ("about..." or "the -") is unfinished whatever the word.
_TRAILING_HESITATION = re.compile(r"(\.\.\.|…|-|–|—)\s*$")
_WORD = re.compile(r"[\w'’]+", re.UNICODE)


@dataclass(frozen=True)
class Completeness:
    """The words' verdict on the turn so far, and why (shown in turn_end and -v logs)."""

    finished: bool
    reason: str  # e.g. "ends on 'about'", "a question", "ends on a hesitation"


def judge(text: str, language: str) -> Completeness:
    """Whether the transcript of a turn so far could be the whole turn (en, fr, de; other languages: yes)."""
    t = text.strip()
    if not t:
        return Completeness(False, "no words yet")
    words = _WORD.findall(t.lower())
    if not words:
        return Completeness(True, "no words to judge")
    last = words[-1].replace("’", "'")
    last = last.rsplit("'", 1)[-1] if "'" in last and language == "fr" else last  # "l'", "qu'", "d'": the elision
    open_words = _OPEN_ENDINGS.get(language, set())
    # Whisper writes a lone word said slowly as "Maybe..." or "Yes...": one word that can stand alone
    # is an answer, not a hesitation.
    if _TRAILING_HESITATION.search(t) and (len(words) > 1 or last in open_words):
        return Completeness(False, "ends on a hesitation")
    if t.endswith("?"):  # "Et après ?", "Und dann?": a question ends where it asks
        if len(words) > 2 and last in _OPEN_EVEN_IN_A_QUESTION.get(language, set()):
            return Completeness(False, f"a question ending on {last!r}")
        return Completeness(True, "a question")
    if last in open_words or (language == "fr" and words[-1].endswith("'")):
        return Completeness(False, f"ends on {last!r}")
    return Completeness(True, f"ends on {last!r}")

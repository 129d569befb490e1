"""Whether the words of a turn so far sound finished: the words' side of the end-of-turn decision.

A child who stops mid-sentence to find a word ("Tell me a story about ... a dragon") pauses after
a word that cannot end a request: a conjunction, an article, a preposition, a filler, a relative
pronoun, a verb still waiting for its object. Pure and time-free: the listener asks it about the
transcript of the turn so far at the first pause, and keeps listening while it says "unfinished".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import lang

# Per language (lang/: open_endings, open_in_question): the words after which a sentence cannot end,
# written from grammar, not from any test set (function words that always need what follows); and of
# those, the ones a question cannot end on either. A question may end on a preposition ("What is it
# about?") or a verb ("Can you?"), but not on an article, a conjunction or a relative pronoun: "Tell me
# about a robot who?" is Whisper's rising guess at a child's pause. ("Und dann?", "Et après ?" end.)

# A hesitation Whisper writes out ("about..." or "the -") is unfinished whatever the word.
_TRAILING_HESITATION = re.compile(r"(\.\.\.|…|-|–|—)\s*$")
_WORD = re.compile(r"[\w'’]+", re.UNICODE)


@dataclass(frozen=True)
class Completeness:
    """The words' verdict on the turn so far, and why (shown in turn_end and -v logs)."""

    finished: bool
    reason: str  # e.g. "ends on 'about'", "a question", "ends on a hesitation"


def judge(text: str, language: str) -> Completeness:
    """Whether the transcript of a turn so far could be the whole turn (languages in lang/; any other: yes)."""
    t = text.strip()
    if not t:
        return Completeness(False, "no words yet")
    words = _WORD.findall(t.lower())
    if not words:
        return Completeness(True, "no words to judge")
    # Whisper names the language it heard, which may have no file in lang/: its words are not judged.
    spoken = lang.get(language) if language in lang.CODES else None
    elision = spoken is not None and spoken.elision
    open_words = spoken.open_endings if spoken else frozenset()
    open_in_question = spoken.open_in_question if spoken else frozenset()
    last = words[-1].replace("’", "'")
    last = last.rsplit("'", 1)[-1] if "'" in last and elision else last  # "l'", "qu'", "d'": the elision
    # Whisper writes a lone word said slowly as "Maybe..." or "Yes...": one word that can stand alone
    # is an answer, not a hesitation.
    if _TRAILING_HESITATION.search(t) and (len(words) > 1 or last in open_words):
        return Completeness(False, "ends on a hesitation")
    if t.endswith("?"):  # "Et après ?", "Und dann?": a question ends where it asks
        if len(words) > 2 and last in open_in_question:
            return Completeness(False, f"a question ending on {last!r}")
        return Completeness(True, "a question")
    if last in open_words or (elision and words[-1].endswith("'")):
        return Completeness(False, f"ends on {last!r}")
    return Completeness(True, f"ends on {last!r}")

"""Everything per language in one place: what the child hears and what the app listens for.

One module per language (`lang/en.py`, `lang/fr.py`, `lang/de.py`), each defining one
`LANGUAGE = Language(code=..., ...)`. The codes are discovered from the modules in this package,
so a fourth language is one new file (`lang/it.py`) plus `story.language: it` in config.yaml: the
settings accept it, and every stage reads `lang.get(code).<field>`. The big data files stay apart
and are named by what uses them: the meaning layers' training sentences
(`safety/data/train_{code}_*.tsv`, `llm/data/intent_train_{code}.tsv`) and their trained weights, which
a new language needs retrained (README, "Adding a language").

This package imports nothing of the project's: it is the leaf every stage may import.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Language:
    """One language's lines and patterns (regexes are matched on text lower-cased, and where said, without accents).

    Everything a language needs is a field here, except the meaning layers' training sentences, which
    are data: `safety/data/train_<code>_*.tsv` and `llm/data/intent_train_<code>.tsv` (then retrain).
    """

    code: str  # ISO 639-1, as in config.yaml and Whisper ("en")
    name: str  # its English name, told to the model ("Always answer in French") and shown to the teacher

    # --- what the child hears ---
    sorry: str  # a turn failed: silence must never mean "it's broken"
    too_long: str  # a request over story.max_request_chars / max_request_tokens
    acknowledgements: Mapping[str, tuple[str, ...]]  # by mode value ("new_story"...): said the moment a turn ends
    redirect_topics: tuple[str, ...]  # safe story topics a redirect offers
    redirect: str  # "{topic}": said instead of a request not fit for a children's story
    redirect_request: str  # "{topic}": what the model is asked for in its place
    self_harm: str  # a child who speaks of hurting themselves: care and a grown-up, no story
    care: str  # a child who tells of harm done to them: thanks, care, a grown-up to tell today
    privacy: str  # personal information was taken out of the request: why, kindly
    closing: str  # a kind end to a story whose next sentence was blocked twice
    story_end: str  # said after a story the reply budget cut short
    nothing_to_repeat: str  # "say that again" before anything was said
    mode_instructions: Mapping[str, str]  # by mode value: what the model is asked to do ("{recap}": sentences)
    child_said: str  # "{text}": the child's words, after the mode's instruction
    quiz_intro: str  # before the first question after a story
    praise: tuple[str, ...]  # a right answer
    hint: str  # "{hint}": after a first wrong answer
    dont_know_hint: str  # "{hint}": after a first "I don't know" or silence
    tell: str  # "{answer}": the second miss, the answer told kindly
    quiz_done: str  # after the last question
    quiz_stopped: str  # the child asked to stop the questions
    no_story: str  # questions asked for before any story
    no_question: str  # no question could be made about the story
    who_question: tuple[str, str]  # the fallback question and its hint ("{letter}": the answer's first letter)
    reask_choice: str  # "{a}", "{b}": the child's pick at a choice point was unclear
    story_picks: str  # "{choice}": the child did not pick, the story does
    child_picked: str  # "{choice}": the child's pick, repeated back

    # --- what the app listens for ---
    story_prompt: str  # Whisper's initial prompt: words a child asking for a story is likely to say
    stop_words: tuple[str, ...]  # said alone, they stop the story at once (matched as whole words, lower case)
    ask_for_questions: str  # regex (no accents): the child asks to be quizzed
    ask_to_choose: str  # regex (no accents): the child asks to steer the story
    choice_or: str  # the word joining a choice question's two options
    choice_stem: str  # regex: how a choice question starts, before its first option
    choice_ordinals: tuple[str, str]  # regexes (no accents): "the first one", "the second one"
    choice_stop_words: frozenset[str]  # words that never tell two options apart (no accents)
    dont_know: str  # regex (no accents): "I don't know"
    yes_no: tuple[str, str]  # the model's one-word verdict on an answer, "yes" and "no" (lower case, no accents)
    answer_stop_words: frozenset[str]  # words that never make an answer right (no accents)
    articles: str  # regex: the articles before a thing named in a story ("the robot", "le renard")
    not_characters: frozenset[str]  # nouns an article comes with that are no character ("once upon a time")
    nouns_capitalised: bool  # every noun has a capital (German), so capitals do not tell names
    intent_cues: Mapping[str, tuple[str, ...]]  # by intent label: regexes (lower case) cueing that label
    question_words: str  # regex alternation: words that open a question
    story_words: str  # regex alternation: words that ask for a story ("story", "histoire")
    abbreviations: frozenset[str]  # lower case, no final dot: ". X" after them ends no sentence
    spaced_closers: str  # characters written after a space that still close a sentence (French "!", "»")
    lone_i_is_a_word: bool  # "I." ends a sentence (English); elsewhere a lone capital is an initial
    number_dot_is_ordinal: bool  # "am 3. Mai": a number with a dot is an ordinal, not an end (German)
    open_endings: frozenset[str]  # words a request cannot end on (lower case): the turn is not over
    open_in_question: frozenset[str]  # of those, the ones a question cannot end on either
    elision: bool  # "l'", "qu'": a word ending in an apostrophe joins the next one (French)

    # --- what the safety rules look for (matched after safety.rules.normalize: no accents, ß -> ss) ---
    safety_words: Mapping[str, tuple[str, ...]]  # by category (safety.lexicon.CATEGORIES): regex fragments
    safety_fuzzy: Mapping[str, tuple[str, ...]]  # by category: long words also caught one letter wrong
    real_words_near_fuzzy: frozenset[str]  # real words one letter from a fuzzy one ("laughter"): never a misspelling
    digit_words: str  # regex alternation: the digits said as words (a phone number said aloud)
    phone_min_words: int  # how many digit words, less one, make a phone number
    spoken_at_dot: tuple[str, str]  # an e-mail address said aloud: "at" and "dot" (emma at mail dot com)
    name_intro: str  # regex alternation: "my name is"
    weak_intro: str  # regex alternation: "I'm": names someone only before two capitalised words
    not_names: frozenset[str]  # words after an introduction that are no name
    common_after_name: frozenset[str]  # words that follow a first name in ordinary speech (not a surname)
    common_suffixes: tuple[str, ...]  # endings of words that are no surname ("-ing", "-ly")
    personal_patterns: tuple[tuple[str, str], ...]  # (kind, regex) for what a child says: address, school, zip


class UnknownLanguage(ValueError):
    """A language code with no module in lang/."""


def discover(paths: Iterable[str]) -> tuple[str, ...]:
    """The language codes in these folders: every module whose name does not start with "_", sorted."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(list(paths)) if not m.ispkg and not m.name.startswith("_")))


CODES = discover(__path__)


def get(code: str) -> Language:
    """The language for this code; an unknown code is an error naming the known ones (never a silent fallback)."""
    if code not in CODES:
        raise UnknownLanguage(f"unknown language {code!r}: known are {', '.join(CODES)} (a language is a file lang/<code>.py)")
    return _load(code)


@lru_cache(maxsize=None)
def _load(code: str) -> Language:
    module = importlib.import_module(f"{__name__}.{code}")
    language = getattr(module, "LANGUAGE", None)
    if not isinstance(language, Language) or language.code != code:
        raise UnknownLanguage(f"lang/{code}.py must define LANGUAGE = Language(code={code!r}, ...)")
    return language

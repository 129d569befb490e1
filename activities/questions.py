"""Comprehension questions: written by the model about the story just told, judged leniently."""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

import lang
from safety.rules import normalize

# What to ask each age group, after the classroom project the Phi-Ed adapter was made for.
QUESTION_STYLE = {
    "Toddlers": "very simple who or what questions, colours, animals and feelings",
    "Preschoolers": "simple who, what and why questions, and what happened first or last",
    "Early Elementary": "simple why and how questions, and the order of events",
    "Late Elementary": "questions about reasons, outcomes and what might happen next",
    "Preteens": "questions about the characters' choices, right and wrong, and how others felt",
}

# What an answer is listened for ("I don't know", words that never make it right) is in lang/.


@dataclass(frozen=True)
class QA:
    """A question, the answer expected (kept from the child) and a gentle hint."""

    question: str
    answer: str
    hint: str


@dataclass(frozen=True)
class Judgement:
    """How an answer was taken: right, "I don't know" (or silence), and which judge decided."""

    correct: bool
    dont_know: bool
    method: str  # "match" (words), "model" (meaning), "none" (silence or "I don't know")


def question_prompt(story: str, age_group: str, language: str, n: int) -> list[dict[str, str]]:
    """Messages asking the model for n questions in a form that can be parsed line by line."""
    return [
        {"role": "system", "content": "You write short comprehension questions about children's stories."},
        {"role": "user", "content": (
            f"Story:\n{story}\n\nWrite {n} short questions about this story in {lang.get(language).name} "
            f"for a child ({age_group}): {QUESTION_STYLE[age_group]}. Each answer must be a few words found "
            "in the story. One question per line, exactly in this form:\n"
            "Q: <question> | A: <answer> | H: <a gentle hint that does not give the answer away>"
        )},
    ]


_QA_LINE = re.compile(r"Q\s*[:.]\s*(.+?)\s*\|\s*A\s*[:.]\s*(.+?)\s*\|\s*H\s*[:.]\s*(.+)", re.IGNORECASE)


def parse_questions(text: str, n: int) -> list[QA]:
    """The Q | A | H lines of the model's reply (anything else is ignored)."""
    found = []
    for line in text.splitlines():
        m = _QA_LINE.search(line)
        if m and all(part.strip() for part in m.groups()):
            found.append(QA(*(part.strip() for part in m.groups())))
    return found[:n]




def fallback_questions(story: str, language: str) -> list[QA]:
    """A question that needs no model: who the story was about (its most named character)."""
    spoken = lang.get(language)
    # Nouns an article comes with that are no character ("once upon a time"), in any language as before.
    not_characters = frozenset().union(*(lang.get(code).not_characters for code in lang.CODES))
    names: Counter = Counter()
    for sentence in re.split(r"(?<=[.!?])\s+", story):
        words = re.findall(r"[\w'-]+", sentence)
        # Capitalised words not at the start of a sentence are names ("Benny", "Lila").
        names.update(w for w in words[1:] if w[:1].isupper() and len(w) > 2 and w.lower() not in spoken.answer_stop_words)
    if names and not spoken.nouns_capitalised:  # German capitalises every noun: use the article rule below
        who = names.most_common(1)[0][0]
    else:
        # Else the thing most often named with an article: "the robot", "le renard", "der Igel".
        things = Counter(m.group(0) for m in re.finditer(rf"\b{spoken.articles}[\w-]{{3,}}", story, re.IGNORECASE)
                         if m.group(0).split()[-1].split("'")[-1].lower() not in not_characters)
        if not things:
            return []
        who = things.most_common(1)[0][0] if spoken.nouns_capitalised else things.most_common(1)[0][0].lower()
    noun = who.split()[-1].split("'")[-1]
    question, hint = spoken.who_question
    return [QA(question, who, hint.format(letter=noun[0].upper()))]


# The model's whole reply to a conversation of the activity's own (Storyteller.complete): short,
# structured answers, never spoken and never part of the story's memory.
Complete = Callable[[list[dict[str, str]], Optional[threading.Event]], str]


def make_questions(complete: Complete, story: str, age_group: str, language: str, n: int,
                   cancel: Optional[threading.Event] = None) -> list[QA]:
    """Up to n questions about the story from the model, or the fallback when it gives none usable."""
    try:
        found = parse_questions(complete(question_prompt(story, age_group, language, n), cancel), n)
    except Exception:  # noqa: BLE001 - a failing model still leaves the fallback question
        found = []
    return found or fallback_questions(story, language)


def is_dont_know(answer: str, language: str) -> bool:
    """Silence or "I don't know" (in the child's language)."""
    text = normalize(answer).strip(" .!?")
    return not text or re.search(rf"\b({lang.get(language).dont_know})\b", text) is not None


def _content(text: str, language: str) -> list[str]:
    stop = lang.get(language).answer_stop_words
    return [w for w in re.findall(r"[a-z0-9]+", normalize(text)) if w not in stop]


def _near(a: str, b: str) -> bool:
    """Same word give or take an ending or a letter heard wrong ("rabbits"/"rabbit", "bunnie"/"bunny")."""
    if a == b or (len(a) >= 4 and len(b) >= 4 and (a.startswith(b[:4]) and b.startswith(a[:4]))):
        return True
    if min(len(a), len(b)) < 3 or max(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 1:
        return False
    # one edit apart
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def words_match(expected: str, answer: str, language: str) -> bool:
    """The child's answer holds most of the expected answer's words, allowing for transcription slips."""
    want, said = _content(expected, language), _content(answer, language)
    if not want or not said:
        return False
    hits = sum(1 for w in want if any(_near(w, s) for s in said))
    return hits >= max(1, (len(want) + 1) // 2)


def judge_prompt(qa: QA, answer: str, language: str) -> list[dict[str, str]]:
    """Messages asking the model whether the child's answer means the expected one."""
    return [
        {"role": "system", "content": "You check children's answers to story questions kindly and leniently."},
        {"role": "user", "content": (
            f"Question: {qa.question}\nExpected answer: {qa.answer}\nThe child said (speech recognition, may "
            f"have small errors, in {lang.get(language).name}): {answer}\n"
            "Does the child's answer mean the same as the expected answer? Accept synonyms, near misses and "
            "partly right answers. Reply with one word: yes or no."
        )},
    ]


def judge(complete: Optional[Complete], qa: QA, answer: str, language: str, cancel: Optional[threading.Event] = None) -> Judgement:
    """Right or not: "I don't know" first, then the words, then (when in doubt) the model on meaning."""
    if is_dont_know(answer, language):
        return Judgement(False, True, "none")
    if words_match(qa.answer, answer, language):
        return Judgement(True, False, "match")
    if complete is not None:
        try:
            reply = normalize(complete(judge_prompt(qa, answer, language), cancel))
        except Exception:  # noqa: BLE001 - no model verdict: the word match alone decided
            reply = ""
        # The model may answer in any language (the question asks for yes or no in English).
        verdicts = [lang.get(code).yes_no for code in lang.CODES]
        m = re.search(rf"\b({'|'.join(word for pair in verdicts for word in pair)})\b", reply)
        if m:
            return Judgement(m.group(1) in {yes for yes, _ in verdicts}, False, "model")
    return Judgement(False, False, "match")

"""Every sentence checked before a child hears it: the age policy over the rule, classifier and meaning layers."""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol

import lang
from safety.lexicon import CATEGORIES
from safety.rules import Match, normalize, personal_matches, word_matches

if TYPE_CHECKING:
    from safety.semantic import Reading

log = logging.getLogger(__name__)

# Blocked at every age: nothing in a children's story needs these.
ALWAYS = frozenset({"self_harm", "sexual", "hate", "gore", "dangerous", "profanity", "personal_info"})
# What each age group may not hear, on top of ALWAYS (README, "Child safety", explains why).
AGE_POLICY: dict[str, frozenset[str]] = {
    "Toddlers": ALWAYS | {"violence", "rude", "peril"},
    "Preschoolers": ALWAYS | {"violence", "rude"},
    "Early Elementary": ALWAYS,
    "Late Elementary": ALWAYS,
    "Preteens": ALWAYS,
}
# A child may ask for a witch or a ghost at any age: the model tells it gently for the age
# group, and the output check holds the line sentence by sentence.
INPUT_ALLOWED = frozenset({"peril"})
# The meaning layer's bar per age group (README, "Policy per age group"): which threshold of the
# trained layer (safety/data/meaning.npz) applies, and whether content for older children
# (a battle death told plainly, a spooky ghost) counts as unsafe too.
MEANING_POLICY: dict[str, tuple[str, bool]] = {
    "Toddlers": ("toddlers", True),
    "Preschoolers": ("young", True),
    "Early Elementary": ("young", True),
    "Late Elementary": ("old", False),
    "Preteens": ("preteens", False),
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check; `masked` is the text with what was caught replaced by [category]."""

    ok: bool
    category: Optional[str] = None
    rule: Optional[str] = None
    layer: Optional[str] = None  # "rules", "personal" or "classifier"
    masked: str = ""


@dataclass(frozen=True)
class Screened:
    """The child's words after the turn's one input check: what goes on to the model, what the child hears first."""

    request: str  # the request for the model: personal information taken out, a safe topic for an unsafe one
    say: tuple[str, ...] = ()  # said before anything else: the privacy reminder, the redirect, or care
    verdict: Optional[Verdict] = None  # what the check stopped; None when the words were fine
    tell: bool = True  # False: care is the whole answer (self-harm, a disclosure), never a story

    @property
    def redirected(self) -> bool:
        """The request was not safe to tell: the story is about something else (or there is none)."""
        return self.verdict is not None and self.verdict.category != "personal_info"


class Classifier(Protocol):
    """An optional model-based layer: label probabilities for a text (see safety/classifier.py)."""

    def unsafe(self, text: str) -> Optional[tuple[str, float]]:
        """The most likely unsafe label and its probability, or None when the text looks safe."""
        ...


class Meaning(Protocol):
    """The meaning layer (safety/semantic.py): what a sentence says, with its trained thresholds."""

    thresholds: dict[str, float]

    def read(self, text: str) -> "Reading": ...
    def forget(self) -> None: ...


class Judge(Protocol):
    """A model asked about each sentence (safety/judge.py): safe, older, unsafe, or None for no clear answer."""

    def label(self, text: str, spoken_by_child: bool = False) -> Optional[str]: ...


class SafetyGuard:
    """Checks what a child says (input) and what the storyteller is about to say (output)."""

    def __init__(self, age_group: str, language: str, classifier: Optional[Classifier] = None,
                 meaning: Optional[Meaning] = None, meaning_on_output: bool = True, rng: Optional[random.Random] = None):
        self.age_group, self.language = age_group, language
        self.rng = rng or random.Random()  # picks the safe topic of a redirect
        self.blocked = AGE_POLICY[age_group]
        self.classifier = classifier
        self.meaning = meaning  # None: the rule layer alone
        self.meaning_on_output = meaning_on_output  # False: the meaning layer reads only what the child says
        self.judge: Optional[Judge] = None  # the model's own judgement, added once the model is loaded (main.py)

    def set_audience(self, age_group: str, language: str) -> None:
        """Another age group or language from now on (the teacher changed it mid-session)."""
        self.age_group, self.language, self.blocked = age_group, language, AGE_POLICY[age_group]
        if self.judge is not None and hasattr(self.judge, "age_group"):
            self.judge.age_group = age_group

    def screen(self, text: str) -> Screened:
        """Check what the child said once, and decide what the turn does with it."""
        verdict = self.check_input(text)
        if verdict.ok:
            return Screened(text)
        if verdict.category == "personal_info":
            # Taken out (the model, and a remote server, never see it); the request goes on.
            return Screened(self.redact(text), (lang.get(self.language).privacy,), verdict)
        if verdict.category == "self_harm":
            return Screened("", (lang.get(self.language).self_harm,), verdict, tell=False)
        if verdict.category == "disclosure":
            return Screened("", (lang.get(self.language).care,), verdict, tell=False)
        # Not a request for a children's story: no lecture, a warm turn to a safe topic instead.
        said = lang.get(self.language)
        topic = self.rng.choice(said.redirect_topics)
        return Screened(said.redirect_request.format(topic=topic), (said.redirect.format(topic=topic),), verdict)

    def forget(self) -> None:
        """A new child: the meaning layer's encoder drops what it kept of the last child's words."""
        if self.meaning is not None:
            self.meaning.forget()

    def check_output(self, text: str) -> Verdict:
        """A sentence about to be spoken or shown."""
        return self._check(text, self.blocked, spoken_by_child=False)

    def check_input(self, text: str) -> Verdict:
        """What the child said (a Whisper transcript or a typed line)."""
        return self._check(text, self.blocked - INPUT_ALLOWED, spoken_by_child=True)

    def _check(self, text: str, blocked: frozenset[str], spoken_by_child: bool) -> Verdict:
        # The meaning layer reads the sentence first when a child said it: a child telling of harm
        # ("he touched me and said it's our secret") must be answered with care even where a word
        # list would only have redirected the request.
        reading = self._read(text) if spoken_by_child else None
        th = self.meaning.thresholds if self.meaning is not None else {}
        words = [m for m in word_matches(text, self.language) if m.category in blocked]
        # Words of self-harm ("I wanna die") keep their own care line, which is written for them.
        if (reading is not None and reading.disclosure >= th["disclosure"] and reading.disclosure >= reading.unsafe
                and not any(m.category == "self_harm" for m in words)):
            return Verdict(False, "disclosure", f"p={reading.disclosure:.2f}", "meaning", "[disclosure]")
        # Every rule runs: personal information beside something unsafe must not hide it. The
        # most serious category decides (CATEGORIES order), and every match is masked.
        personal = [m for m in personal_matches(text, self.language, spoken_by_child) if m.category in blocked]
        matches = sorted(personal + words, key=lambda m: CATEGORIES.index(m.category))
        if matches:
            first = matches[0]
            layer = "personal" if first.category == "personal_info" else "rules"
            return Verdict(False, first.category, first.rule, layer, mask(text, matches))
        if self.classifier is not None:
            try:
                found = self.classifier.unsafe(text)
            except Exception:  # noqa: BLE001 - the rule layer has passed it; a broken model must not end the story
                log.exception("safety classifier failed; the rule layer alone decided")
                found = None
            if found:
                label, p = found
                return Verdict(False, f"classifier:{label}", f"p={p:.2f}", "classifier", f"[{label}]")
        if reading is None and self.meaning_on_output:
            reading = self._read(text)
        key, older_too = MEANING_POLICY[self.age_group]
        older_too = older_too and not spoken_by_child  # a child may ask; the output check holds the line
        if reading is not None:
            if spoken_by_child and reading.jailbreak >= th["jailbreak"]:
                return Verdict(False, "jailbreak", f"p={reading.jailbreak:.2f}", "meaning", "[jailbreak]")
            score = reading.unsafe + (reading.older if older_too else 0.0)
            if score >= th[key]:
                return Verdict(False, reading.category, f"p={score:.2f}", "meaning", f"[{reading.category}]")
        if self.judge is not None:
            label = self._judged(text, spoken_by_child)
            if label == "unsafe" or (label == "older" and older_too):
                return Verdict(False, "judge", label, "judge", "[unsafe]")
        return Verdict(True, masked=text)

    def _judged(self, text: str, spoken_by_child: bool) -> Optional[str]:
        try:
            return self.judge.label(text, spoken_by_child)
        except Exception:  # noqa: BLE001 - the other layers have passed it; a failed request must not end the story
            log.exception("safety self-check failed; the other layers decided")
            return None

    def _read(self, text: str) -> Optional["Reading"]:
        """The meaning layer's reading, or None without one (or when it fails: the rules still decide)."""
        if self.meaning is None:
            return None
        try:
            return self.meaning.read(text)
        except Exception:  # noqa: BLE001 - a broken model must not end the story
            log.exception("safety meaning layer failed; the rule layer alone decided")
            return None

    def redact(self, text: str) -> str:
        """The text with personal information replaced by [address], [phone], [full_name], ..."""
        return mask(text, personal_matches(text, self.language), by_rule=True)


def mask(text: str, matches: list[Match], by_rule: bool = False) -> str:
    """Replace each match with [category] (or [rule] for personal information) in the original text.

    Matches are found in normalized text; a character-level map carries them back, so accents and
    case of the rest survive. A match found only in a re-spelled variant ("k i l l") masks the word
    span it covers when it can, else the whole text.
    """
    norm_to_orig = _index_map(text)
    spans = []
    for m in matches:
        if not m.exact or m.end > len(norm_to_orig):
            return f"[{m.category}]"
        spans.append((norm_to_orig[m.start], norm_to_orig[m.end - 1] + 1, m.rule if by_rule else m.category))
    merged: list[list] = []
    for start, end, label in sorted(spans):
        if merged and start <= merged[-1][1]:  # overlapping matches become one masked stretch
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, label])
    out, pos = [], 0
    for start, end, label in merged:
        out += [text[pos:start], f"[{label}]"]
        pos = end
    out.append(text[pos:])
    return re.sub(r"(\[[\w:]+\])(\s*\1)+", r"\1", "".join(out))


def _index_map(text: str) -> list[int]:
    """For each character of normalize(text), the index of the original character it came from."""
    mapping = []
    for i, ch in enumerate(text):
        mapping += [i] * len(normalize(ch))
    return mapping

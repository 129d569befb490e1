"""Every sentence checked before a child hears it: the age policy over the rule and classifier layers."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Optional, Protocol

from safety.lexicon import CATEGORIES
from safety.rules import Match, normalize, personal_matches, word_matches

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


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check; `masked` is the text with what was caught replaced by [category]."""

    ok: bool
    category: Optional[str] = None
    rule: Optional[str] = None
    layer: Optional[str] = None  # "rules", "personal" or "classifier"
    masked: str = ""


class Classifier(Protocol):
    """An optional model-based layer: label probabilities for a text (see safety/classifier.py)."""

    def unsafe(self, text: str) -> Optional[tuple[str, float]]:
        """The most likely unsafe label and its probability, or None when the text looks safe."""
        ...


class SafetyGuard:
    """Checks what a child says (input) and what the storyteller is about to say (output)."""

    def __init__(self, age_group: str, language: str, classifier: Optional[Classifier] = None):
        self.age_group, self.language = age_group, language
        self.blocked = AGE_POLICY[age_group]
        self.classifier = classifier

    def check_output(self, text: str) -> Verdict:
        """A sentence about to be spoken or shown."""
        return self._check(text, self.blocked, spoken_by_child=False)

    def check_input(self, text: str) -> Verdict:
        """What the child said (a Whisper transcript or a typed line)."""
        return self._check(text, self.blocked - INPUT_ALLOWED, spoken_by_child=True)

    def _check(self, text: str, blocked: frozenset[str], spoken_by_child: bool) -> Verdict:
        # Every layer runs: personal information beside something unsafe must not hide it. The
        # most serious category decides (CATEGORIES order), and every match is masked.
        personal = [m for m in personal_matches(text, self.language, spoken_by_child) if m.category in blocked]
        words = [m for m in word_matches(text, self.language) if m.category in blocked]
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
        return Verdict(True, masked=text)

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

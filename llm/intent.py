"""What the child asks for: the mode of a turn, read from the words and the conversation so far.

Two readers give scores over the same labels, and one pure function, `decide`, turns scores and
context into a mode:
- the meaning reader: a small classifier (scripts/train_intent.py, llm/data/intent.npz) over the
  features of the safety meaning layer's encoder. The safety check reads the child's words anyway;
  the encoder keeps that pass, so routing costs a matrix product, not a second model call (with
  safety.meaning: off the router runs the encoder itself, about 120 ms a turn on 2 cores).
- the patterns: cue phrases in every language of lang/, the fallback when the encoder is off.
The storyteller model choosing the mode itself would cost a prompt read of Phi-3 before the first
word (seconds on a CPU), so it is not used for routing (README, "What the child asks").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

import lang
from llm.prompts import Mode

if TYPE_CHECKING:
    from safety.semantic import Encoder

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).with_name("data") / "intent.npz"

# The classifier's labels and the mode each one is answered in.
LABELS: dict[str, Mode] = {
    "new_story": Mode.NEW_STORY,
    "continue": Mode.CONTINUE,
    "change": Mode.CHANGE,
    "question_story": Mode.QUESTION,
    "question_world": Mode.QUESTION,
    "recap": Mode.RECAP,
    "retell": Mode.RETELL,
    "repeat": Mode.REPEAT,
    "lesson": Mode.LESSON,
}
# Labels that only make sense once a story has been told.
NEEDS_STORY = frozenset({"continue", "change", "recap", "retell", "repeat"})
# "When unsure, prefer answering about the story that was just told over starting a new one":
# a new story chosen with less confidence than this gives way to an answer about the story...
UNSURE = 0.6
# ...when the classifier gives an answer about it at least this much.
ABOUT_STORY_FLOOR = 0.2


@dataclass(frozen=True)
class Context:
    """What the router knows of the conversation."""

    has_story: bool  # a story was told in this session (so it can be continued, recapped, repeated)


@dataclass(frozen=True)
class Decision:
    """The mode of a turn, the label it came from, who decided and how sure it was."""

    mode: Mode
    label: str
    by: str  # "meaning" or "patterns"
    p: Optional[float] = None  # the classifier's probability of the label (None for patterns)


def decide(scores: Mapping[str, float], context: Context, by: str) -> Decision:
    """The label to answer, from scores over LABELS (probabilities, or 1.0 for a matched pattern)."""
    allowed = {k: v for k, v in scores.items() if k in LABELS and (context.has_story or k not in NEEDS_STORY)}
    if not allowed:
        return Decision(Mode.NEW_STORY, "new_story", by, None)
    label = max(allowed, key=allowed.get)
    if label == "new_story" and context.has_story and allowed[label] < UNSURE:
        about = max(("question_story", "recap"), key=lambda k: allowed.get(k, 0.0))
        if allowed.get(about, 0.0) >= ABOUT_STORY_FLOOR:
            label = about
    p = round(float(allowed[label]), 3) if by == "meaning" else None
    return Decision(LABELS[label], label, by, p)


# The cue phrases per label, the question words and the story words are in each language's file
# (lang/: intent_cues, question_words, story_words), written from what the modes mean, not from any
# test set; the classifier is what generalises. Every language's are read, whatever the story's.


def pattern_scores(text: str) -> dict[str, float]:
    """One label from cue phrases (any language in lang/): 1.0 for it, nothing for the rest."""
    t = text.lower().strip()
    languages = [lang.get(code) for code in lang.CODES]

    def cued(label: str) -> bool:
        return any(re.search(rf"(?<!\w){cue}(?!\w)", t) for spoken in languages for cue in spoken.intent_cues.get(label, ()))

    story_words = "|".join(spoken.story_words for spoken in languages)
    question_words = "|".join(spoken.question_words for spoken in languages)
    asks_story = re.search(rf"\b({story_words})", t) is not None
    question = not asks_story and (t.endswith("?") or re.search(rf"^({question_words})\b", t) is not None)
    base = "question_story" if question else "new_story"  # what it is when no cue applies
    # Order matters: "say that again" is a repeat before it is a retell, "tell the story again" a retell.
    for label in ("repeat", "recap", "retell", "lesson", "change", "continue"):
        if cued(label):
            return {label: 1.0, base: 0.5}  # without a story to act on, the base reading answers
    return {base: 1.0}


class IntentRouter:
    """Decides the mode of each turn: the meaning classifier when it is loaded, else the patterns."""

    def __init__(self, encoder: Optional["Encoder"] = None, weights: Path = WEIGHTS):
        """Patterns alone with no encoder; with one, the trained head (over that encoder when it is the one trained over)."""
        self.encoder, self.head = None, None
        if encoder is not None:
            from safety.semantic import Head

            self.head = Head(weights, "the intent router", "run python -m scripts.train_intent to build them")
            self.encoder = self.head.encoder_for(encoder)

    @classmethod
    def with_own_encoder(cls, weights: Path = WEIGHTS) -> "IntentRouter":
        """A router that reads the words itself (no safety meaning layer to share a pass with)."""
        from safety.semantic import Head

        head = Head(weights, "the intent router", "run python -m scripts.train_intent to build them")
        return cls(head.encoder_for(None), weights)

    @property
    def by(self) -> str:
        """Which reader decides: "meaning" or "patterns"."""
        return "meaning" if self.head is not None else "patterns"

    def forget(self) -> None:
        """A new child: the encoder drops the features it keeps of the last child's words."""
        if self.encoder is not None:
            self.encoder.forget()

    def scores(self, text: str) -> dict[str, float]:
        """Scores over the labels for the child's words."""
        if self.head is None or self.encoder is None:
            return pattern_scores(text)
        p = self.head.probabilities(self.encoder([text], self.head.layers))[0]
        return {label: float(v) for label, v in zip(self.head.classes, p)}

    def decide(self, text: str, context: Context) -> Decision:
        """The mode for this turn; a failing classifier falls back to the patterns for the turn."""
        if not text.strip():
            return Decision(Mode.NEW_STORY, "new_story", self.by)
        try:
            return decide(self.scores(text), context, self.by)
        except Exception:  # noqa: BLE001 - routing must not end the turn: the patterns still decide
            log.warning("intent: the classifier failed; the patterns decide this turn", exc_info=True)
            return decide(pattern_scores(text), context, "patterns")


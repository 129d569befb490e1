"""What the child asks for: the mode of a turn, read from the words and the conversation so far.

Two readers give scores over the same labels, and one pure function, `decide`, turns scores and
context into a mode:
- the meaning reader: a small classifier (scripts/train_intent.py, llm/data/intent.npz) over the
  features of the safety meaning layer's encoder. The safety check reads the child's words anyway;
  the encoder keeps that pass, so routing costs a matrix product, not a second model call (with
  safety.meaning: off the router runs the encoder itself, about 120 ms a turn on 2 cores).
- the patterns: cue phrases in the three languages, the fallback when the encoder is off.
The storyteller model choosing the mode itself would cost a prompt read of Phi-3 before the first
word (seconds on a CPU), so it is not used for routing (README, "What the child asks").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional

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


# Cue phrases per label and language, matched on word boundaries in lower case. Written from what
# the modes mean, not from any test set; the classifier is what generalises.
_CUES: dict[str, dict[str, list[str]]] = {
    "repeat": {
        "en": [r"^(what|huh|pardon|sorry|eh|what\?)\W*$", r"what did you (just )?say", r"say (that|it) again",
               r"repeat", r"(didn't|did not|can't|couldn't|could not) hear", r"come again", r"what was that"],
        "fr": [r"^(quoi|hein|pardon|comment)\W*$", r"tu (as|a) dit quoi", r"qu'est-ce que tu (as|a) dit", r"répète",
               r"(pas|n'ai pas) (bien )?entendu", r"redis", r"j'ai pas compris"],
        "de": [r"^(was|hä|wie bitte|bitte)\W*$", r"was hast du (da )?gesagt", r"wiederhol", r"nicht (gehört|verstanden)",
               r"sag (das|es) nochmal"],
    },
    "recap": {
        "en": [r"what (was|is) (the|that|this|it|the whole) (story )?about", r"remind me", r"what happened in (the|that|this) story",
               r"sum (it )?up", r"summar", r"i forgot what", r"short version"],
        "fr": [r"c'était quoi (l'histoire|déjà)", r"ça parlait de quoi", r"de quoi (ça|elle) parl", r"rappelle", r"résum",
               r"j'ai oublié", r"qu'est-ce qui s'est passé dans l'histoire"],
        "de": [r"worum (ging|geht)", r"erinner", r"zusammen(fass|gefasst)", r"fass .{0,30}zusammen", r"vergessen",
               r"was (ist|war) in der geschichte"],
    },
    "retell": {
        "en": [r"(tell|read|do) (it|that|that one|the story|that story|the same story|the same one) again",
               r"(the )?same (one|story)", r"from the (start|beginning)", r"one more time", r"once more",
               r"hear (it|that|that one) again"],
        "fr": [r"raconte[- ]la (encore|de nouveau)", r"la même( histoire)?", r"depuis le début", r"encore une fois",
               r"réentendre", r"recommence"],
        "de": [r"(erzähl|lies)( sie| die| das| es)? (nochmal|noch einmal)", r"(die )?gleiche( geschichte)?", r"von vorn",
               r"noch einmal", r"nochmal hören"],
    },
    "lesson": {
        "en": [r"teach (me|us)", r"i want to learn", r"learn about", r"a lesson", r"explain .{0,40}(with|in|through) a story",
               r"story that (teaches|explains)"],
        "fr": [r"apprends[- ](moi|nous)", r"apprendre", r"leçon", r"explique[- ]moi .{0,40}histoire",
               r"histoire qui (explique|apprend)"],
        "de": [r"bring (mir|uns) .{0,40}bei", r"lernen", r"lektion", r"erklär.{0,40}geschichte", r"geschichte, die .{0,40}erklärt"],
    },
    "change": {
        "en": [r"make it about", r"make (him|her|it|them|the \w+) (a|an|more|less)", r"change", r"instead", r"this time",
               r"what if"],
        "fr": [r"fais[- ]en", r"change", r"plutôt", r"à la place", r"cette fois", r"et si"],
        "de": [r"mach daraus", r"ändere?", r"stattdessen", r"diesmal", r"lieber", r"und wenn"],
    },
    "continue": {
        "en": [r"what happens next", r"what happened next", r"and then", r"then what", r"continue", r"go on",
               r"keep going", r"tell me more", r"more please", r"^more\b"],
        "fr": [r"la suite", r"et après", r"et ensuite", r"continue", r"encore"],
        "de": [r"weiter", r"was passiert dann", r"und dann", r"noch mehr"],
    },
}
_QUESTION_WORDS = (
    r"^(why|what|who|where|when|how|which|is|are|do|does|can|could|did|was|were|"
    r"pourquoi|qu'est-ce|quel|quelle|qui|où|quand|comment|est-ce|c'est qui|"
    r"warum|wieso|weshalb|was|wer|wo|wann|wie|welche[rsmn]?|ist|sind|kann|können|hat|war)\b"
)
_STORY_REQUEST = r"\b(story|tale|histoire|conte|raconte|geschichte|märchen|erzähl)"


def pattern_scores(text: str) -> dict[str, float]:
    """One label from cue phrases (any of the three languages): 1.0 for it, nothing for the rest."""
    t = text.lower().strip()

    def cued(label: str) -> bool:
        return any(re.search(rf"(?<!\w){cue}(?!\w)", t) for cues in _CUES[label].values() for cue in cues)

    asks_story = re.search(_STORY_REQUEST, t) is not None
    question = not asks_story and (t.endswith("?") or re.search(_QUESTION_WORDS, t) is not None)
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


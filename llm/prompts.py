"""System prompts per age group and language, and the story mode read from what the child said."""

from __future__ import annotations

import re
from enum import Enum

LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German"}

# Style rules per age group, after the classroom project the Phi-Ed adapter was made for
# (see README, "Where Phi-Ed comes from").
AGE_STYLE = {
    "Toddlers": (
        "The listener is a toddler (1-3 years). Use very short, simple, rhythmic sentences with "
        "repetition, about familiar routines: eating, sleeping, playing, animals, family. "
        "No danger or conflict at all. A story is 5 to 8 short sentences."
    ),
    "Preschoolers": (
        "The listener is a preschooler (3-5 years). Use short sentences and everyday words; where a "
        "simpler word exists, avoid words heavy in sounds young children find hard (l, s, r, v, z, "
        "ch, sh, th). Gentle themes of responsibility, pride and saying sorry. A story is 8 to 12 "
        "sentences."
    ),
    "Early Elementary": (
        "The listener is 6-8 years old. Use a growing vocabulary and clear cause and effect. Mild, "
        "quickly resolved peril is fine. A story is 10 to 15 sentences."
    ),
    "Late Elementary": (
        "The listener is 8-10 years old. Use a richer vocabulary, cause and effect, and a small "
        "twist. Adventure with some suspense is fine, always resolved kindly. A story is 12 to 18 "
        "sentences."
    ),
    "Preteens": (
        "The listener is 10-12 years old. Explore empathy, friendship, peer pressure and moral "
        "choices, with characters who think about what is right. A story is 15 to 20 sentences."
    ),
}

PERSONA = (
    "You are a warm, easy-going storyteller for children, speaking out loud through a robot. "
    "Use simple words, be curious and kind, and add a little twist that keeps children listening. "
    "Your words are spoken by a voice: write plain sentences only, no lists, no headings, no "
    "markdown, no emoji. Never include violence, scary gore, romance, rude words or anything "
    "unsafe for children, and never ask for or repeat personal information such as names of "
    "schools, addresses or phone numbers."
)


class Mode(str, Enum):
    """What the child asked for, which decides the instruction sent with their words."""

    NEW_STORY = "new_story"
    CONTINUE = "continue"
    CHANGE = "change"
    QUESTION = "question"
    CHOICE = "choice"  # the story goes on along the child's pick at a choice point


MODE_INSTRUCTIONS = {
    Mode.NEW_STORY: "Tell a new story for this request: {text}",
    Mode.CONTINUE: "Continue the story you are telling from where it stopped. The child said: {text}",
    Mode.CHANGE: "Tell the story again, changed as the child asks: {text}",
    Mode.QUESTION: "Answer the child's question simply and briefly, in two or three sentences: {text}",
    Mode.CHOICE: "The child chose: {text}. Continue the story along that choice and bring it to a happy ending.",
}

# Cue words per mode, in the three languages; matched on word boundaries, lower case.
_CUES = {
    Mode.CONTINUE: [
        r"what happens next", r"what happened next", r"and then", r"then what", r"continue",
        r"go on", r"keep going", r"tell me more", r"more please", r"^more\b",
        r"la suite", r"et après", r"et ensuite", r"continue", r"encore",
        r"weiter", r"was passiert dann", r"und dann", r"erzähl weiter", r"noch mehr",
    ],
    Mode.CHANGE: [
        r"make it about", r"make (him|her|it|them) a", r"change", r"instead", r"this time",
        r"fais[- ]en", r"change", r"plutôt", r"à la place", r"cette fois",
        r"mach daraus", r"ändere?", r"stattdessen", r"diesmal", r"lieber",
    ],
}
_QUESTION_WORDS = (
    r"^(why|what|who|where|when|how|which|is|are|do|does|can|could|did|"
    r"pourquoi|qu'est-ce|quel|quelle|qui|où|quand|comment|est-ce|"
    r"warum|wieso|weshalb|was|wer|wo|wann|wie|welche[rsmn]?|ist|sind|kann|können)\b"
)
_STORY_REQUEST = r"\b(story|tale|histoire|conte|raconte|geschichte|märchen|erzähl)"


def detect_mode(text: str, has_story: bool) -> Mode:
    """Read what the child wants from their words; continuing or changing needs a story first."""
    t = text.lower().strip()
    asks_story = re.search(_STORY_REQUEST, t) is not None
    if has_story:
        for mode in (Mode.CHANGE, Mode.CONTINUE):
            if any(re.search(rf"(?<!\w){cue}(?!\w)", t) for cue in _CUES[mode]):
                return mode
    if not asks_story and (t.endswith("?") or re.search(_QUESTION_WORDS, t)):
        return Mode.QUESTION
    return Mode.NEW_STORY


def system_prompt(age_group: str, language: str) -> str:
    """The storyteller's instructions for one age group and language."""
    lang = LANGUAGE_NAMES[language]
    return f"{PERSONA} {AGE_STYLE[age_group]} Always answer in {lang}, whatever language the child uses."


def user_prompt(text: str, mode: Mode, instruction: str = "") -> str:
    """The child's words wrapped in the instruction for the mode (plus any activity instruction)."""
    return MODE_INSTRUCTIONS[mode].format(text=text.strip()) + instruction

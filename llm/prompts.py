"""System prompts per age group and language, and what the storyteller is asked to do in each mode."""

from __future__ import annotations

from enum import Enum

import lang

# Style rules per age group, after the classroom project the Phi-Ed adapter was made for
# (see README, "Where Phi-Ed comes from").
AGE_STYLE = {
    "Toddlers": (
        "The listener is a toddler (1-3 years). Use very short, simple, rhythmic sentences with "
        "repetition, about familiar routines: eating, sleeping, playing, animals, family. "
        "No danger or conflict at all."
    ),
    "Preschoolers": (
        "The listener is a preschooler (3-5 years). Use short sentences and everyday words; where a "
        "simpler word exists, avoid words heavy in sounds young children find hard (l, s, r, v, z, "
        "ch, sh, th). Gentle themes of responsibility, pride and saying sorry."
    ),
    "Early Elementary": (
        "The listener is 6-8 years old. Use a growing vocabulary and clear cause and effect. Mild, "
        "quickly resolved peril is fine."
    ),
    "Late Elementary": (
        "The listener is 8-10 years old. Use a richer vocabulary, cause and effect, and a small "
        "twist. Adventure with some suspense is fine, always resolved kindly."
    ),
    "Preteens": (
        "The listener is 10-12 years old. Explore empathy, friendship, peer pressure and moral "
        "choices, with characters who think about what is right."
    ),
}

# How long a story is, in sentences, by age group; and about how many tokens a sentence takes there
# (measured on the Phi-Ed stories' style: short sentences for the young, longer ones later).
AGE_SENTENCES = {"Toddlers": (5, 8), "Preschoolers": (8, 12), "Early Elementary": (10, 15),
                 "Late Elementary": (12, 18), "Preteens": (15, 20)}
TOKENS_PER_SENTENCE = {"Toddlers": 10, "Preschoolers": 13, "Early Elementary": 17, "Late Elementary": 21, "Preteens": 24}


def story_sentences(age_group: str, reply_tokens: int | None) -> tuple[int, int]:
    """The story length to ask for: the age group's range, cut to what the reply budget can hold."""
    low, high = AGE_SENTENCES.get(age_group, (10, 15))
    if reply_tokens:
        # A sixth of the budget is kept for the model's own rhythm: it runs past what it is asked.
        fits = max(2, int(reply_tokens * 5 / 6) // TOKENS_PER_SENTENCE.get(age_group, 17))
        high = min(high, fits)
        low = min(low, high)
    return low, high


PERSONA = (
    "You are a warm, easy-going storyteller for children, speaking out loud through a robot. "
    "Use simple words, be curious and kind, and add a little twist that keeps children listening. "
    "Your words are spoken by a voice: write plain sentences only, no lists, no headings, no "
    "markdown, no emoji. Never include violence, scary gore, romance, rude words or anything "
    "unsafe for children, and never ask for or repeat personal information such as names of "
    "schools, addresses or phone numbers."
)


class Mode(str, Enum):
    """What the child asked for, which decides what the storyteller is asked to do with their words."""

    NEW_STORY = "new_story"
    CONTINUE = "continue"
    CHANGE = "change"
    QUESTION = "question"  # about the story just told, or about the world
    RECAP = "recap"  # what the story was about, in a few sentences
    RETELL = "retell"  # the same story again, told afresh
    REPEAT = "repeat"  # the last sentence or two again, at once, without the model
    LESSON = "lesson"  # a topic taught through a short story, then questions about it
    CHOICE = "choice"  # the story goes on along the child's pick at a choice point


# What the storyteller is asked to do in each mode is in the language's file (lang/, mode_instructions).
# The child's own words follow on a line of their own, unchanged, so the model reads a question as a
# question and a request as a request (never "Tell a new story for this request: <a question>"). A
# request for a new story is the child's words alone: that is what a storyteller model is tuned to answer.

# How many sentences a recap takes, by age group.
RECAP_SENTENCES = {"Toddlers": 2, "Preschoolers": 3, "Early Elementary": 3, "Late Elementary": 4, "Preteens": 5}


def system_prompt(age_group: str, language: str, reply_tokens: int | None = None) -> str:
    """The storyteller's instructions for one age group and language (a story's length fitted to the reply budget)."""
    name = lang.get(language).name
    low, high = story_sentences(age_group, reply_tokens)
    count = f"at most {high}" if low == high else f"{low} to {high}"
    length = f"A story is {count} {'short ' if age_group == 'Toddlers' else ''}sentences."
    return f"{PERSONA} {AGE_STYLE[age_group]} {length} Always answer in {name}, whatever language the child uses."


def user_prompt(text: str, mode: Mode, language: str, age_group: str, instruction: str = "") -> str:
    """The instruction for the mode, then the child's words as they said them (plus any activity instruction)."""
    if mode is Mode.NEW_STORY:
        return text.strip() + instruction
    told = lang.get(language)
    task = told.mode_instructions[mode.value].format(recap=RECAP_SENTENCES.get(age_group, 3))
    return f"{task}{instruction}\n{told.child_said.format(text=text.strip())}"

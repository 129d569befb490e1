"""The storyteller model's own judgement: a short guard prompt, answered with one label, for each sentence.

Where the model answers fast (a GPU, a shared vLLM server) it is one more layer after the word
lists and the meaning layer. A dedicated guard model served by the same vLLM (Llama Guard 3 1B)
works through the same object: it is given the sentence as a user turn and answers "safe" or
"unsafe" under its own chat template.
"""

from __future__ import annotations

import logging
import re
import threading
from contextlib import closing
from typing import Any, Optional

log = logging.getLogger(__name__)

# Kept short and fixed: a backend that keeps its KV cache reads it once.
PROMPT = ("You check what a storyteller may say to children aged {ages}. Reply with exactly one word: "
          "safe (fine for them), older (only for children over 8) or unsafe (for no child). "
          "Grooming, secrets from parents, asking where a child lives, dangerous acts a child could copy, "
          "self-harm, sexual content, hate, cruelty, body shaming, and a storyteller claiming to be alive or "
          "to love the child are unsafe.")
AGES = {"Toddlers": "1 to 3", "Preschoolers": "3 to 5", "Early Elementary": "5 to 8", "Late Elementary": "8 to 10",
        "Preteens": "10 to 12"}
LABELS = ("safe", "older", "unsafe")
# Enough pieces for one word and what a chat model puts before it ("**", a space, a newline).
MAX_PIECES = 8


class ModelJudge:
    """Asks a backend whether a sentence is safe, older-only or unsafe; None when its answer is none of those."""

    def __init__(self, backend: Any, age_group: str, guard_model: bool = False):
        self.backend, self.age_group = backend, age_group
        self.guard_model = guard_model  # Llama Guard: the sentence alone, its own template decides
        self.calls = 0

    def messages(self, text: str, spoken_by_child: bool) -> list[dict[str, str]]:
        """The guard prompt for one sentence."""
        if self.guard_model:
            return [{"role": "user", "content": text}]
        who = "A child said" if spoken_by_child else "The storyteller is about to say"
        return [{"role": "system", "content": PROMPT.format(ages=AGES[self.age_group])},
                {"role": "user", "content": f"{who}: \"{text}\"\nOne word:"}]

    def label(self, text: str, spoken_by_child: bool = False) -> Optional[str]:
        """safe, older or unsafe, read from the first word of the model's answer."""
        self.calls += 1
        answer = ""
        cancel = threading.Event()
        with closing(self.backend.stream(self.messages(text, spoken_by_child), cancel)) as pieces:
            for n, piece in enumerate(pieces):
                answer += piece
                word = re.search(r"[a-z]+", answer.lower())
                if (word and word.end() < len(answer.rstrip())) or n >= MAX_PIECES:
                    break  # the first word is complete: no need for the rest
        cancel.set()
        word = re.search(r"[a-z]+", answer.lower())
        found = word.group(0) if word else ""
        return found if found in LABELS else None

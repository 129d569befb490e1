"""The storyteller: conversation memory, story modes and prompts around a streaming model."""

from __future__ import annotations

import threading
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Iterator, Optional, Union

from llm.backends import Backend
from llm.prompts import Mode, detect_mode, system_prompt, user_prompt
from llm.sentences import SentenceSplitter


@dataclass(frozen=True)
class Sentence:
    """One complete, speakable sentence of a reply."""

    index: int
    text: str


@dataclass(frozen=True)
class TurnPlan:
    """How the turn will be answered: the mode read from the child's words and the prompt size."""

    mode: Mode
    prompt_tokens: int


@dataclass(frozen=True)
class FirstToken:
    """The model produced its first visible text for this turn."""

    t: float  # seconds since the turn started


@dataclass(frozen=True)
class ReplyDone:
    """The reply ended, naturally or by cancellation."""

    text: str
    tokens: int  # streamed pieces, about one per token
    cancelled: bool


StoryItem = Union[TurnPlan, FirstToken, Sentence, ReplyDone]


class Storyteller:
    """Tell stories turn by turn: `stream(child_text)` yields the reply as complete sentences."""

    def __init__(self, backend: Backend, age_group: str, language: str, memory_tokens: int, max_sentence_words: int):
        self.backend = backend
        self.age_group, self.language = age_group, language
        self.memory_tokens = memory_tokens
        self.max_sentence_words = max_sentence_words
        self.history: list[dict[str, str]] = []  # user/assistant turns, oldest first

    @property
    def has_story(self) -> bool:
        """Whether a story has been told in this session (so it can be continued or changed)."""
        return any(m["role"] == "assistant" for m in self.history)

    def reset(self) -> None:
        """Forget the conversation (a new child at the kiosk)."""
        self.history.clear()

    def messages_for(self, child_text: str, mode: Mode) -> list[dict[str, str]]:
        """System prompt + as much recent history as fits the token budget + the new turn."""
        system = {"role": "system", "content": system_prompt(self.age_group, self.language)}
        turn = {"role": "user", "content": user_prompt(child_text, mode)}
        history = list(self.history)
        # Drop the oldest exchange (user + assistant) until the prompt fits; the new turn always stays.
        while history and self.backend.count_tokens([system, *history, turn]) > self.memory_tokens:
            history = history[2:] if len(history) >= 2 else []
        return [system, *history, turn]

    def stream(self, child_text: str, cancel: Optional[threading.Event] = None) -> Iterator[StoryItem]:
        """Yield TurnPlan, FirstToken, then each Sentence as soon as it is complete, then ReplyDone."""
        cancel = cancel or threading.Event()
        mode = detect_mode(child_text, self.has_story)
        messages = self.messages_for(child_text, mode)
        yield TurnPlan(mode, self.backend.count_tokens(messages))
        splitter = SentenceSplitter(max_words=self.max_sentence_words, language=self.language)
        t0 = time.monotonic()
        pieces: list[str] = []
        index, started = 0, False
        # closing(): a break or an abandoned turn must end the model's worker thread at once.
        with closing(self.backend.stream(messages, cancel)) as model_stream:
            for piece in model_stream:
                if cancel.is_set():
                    break  # nothing after a cancel may reach the speaker
                if not started and piece.strip():
                    started = True
                    yield FirstToken(time.monotonic() - t0)
                pieces.append(piece)
                for text in splitter.feed(piece):
                    yield Sentence(index, text)
                    index += 1
        if not cancel.is_set():
            for text in splitter.flush():
                yield Sentence(index, text)
                index += 1
        reply = "".join(pieces).strip()
        if reply:
            # Remember what was actually said, even if cut short, so "what happens next?" works.
            # Keep only what still fits the budget, so a day-long session does not grow without end.
            self.history = messages[1:] + [{"role": "assistant", "content": reply}]
        yield ReplyDone(text=reply, tokens=len(pieces), cancelled=cancel.is_set())

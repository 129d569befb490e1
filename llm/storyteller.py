"""The storyteller: conversation memory, story modes and prompts around a streaming model."""

from __future__ import annotations

import logging
import re
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

import lang
from errors import ConfigError
from events import BlockedEvent, SentenceReady
from llm.backends import Backend
from llm.intent import Context, Decision, IntentRouter
from llm.prompts import Mode, system_prompt, user_prompt
from llm.sentences import SentenceSplitter

if TYPE_CHECKING:
    from safety.guard import Verdict

log = logging.getLogger(__name__)

# Sent to the model to steer a story back after a blocked sentence (in English like the system
# prompt, which already fixes the language of the reply).
STEER = (
    "Go on with the story from where it stopped, gently and kindly, as suitable for {age}. "
    "Leave out anything frightening, hurtful or unsafe for a child."
)

# Modes whose reply is a story (it gets a closing line when the reply budget cuts it).
STORY_MODES = frozenset({Mode.NEW_STORY, Mode.CONTINUE, Mode.CHANGE, Mode.RETELL, Mode.LESSON, Mode.CHOICE})


@dataclass(frozen=True)
class FirstToken:
    """The model produced its first visible text for this turn."""

    t: float  # seconds since the model was asked


@dataclass(frozen=True)
class ReplyDone:
    """The reply ended, naturally or by cancellation."""

    text: str
    pieces: int  # pieces the model streamed, about one per token
    cancelled: bool


# What stream() yields: the sentences and what the output check stopped are the bus's own events;
# FirstToken and ReplyDone only tell the turn where the model is.
Reply = Union[FirstToken, SentenceReady, BlockedEvent, ReplyDone]
Check = Callable[[str], "Verdict"]


class Storyteller:
    """Tell stories turn by turn: `stream(request, decision)` yields the reply as complete, checked sentences."""

    def __init__(self, backend: Backend, age_group: str, language: str, memory_tokens: int, max_sentence_words: int,
                 steer_retries: int = 1, router: Optional[IntentRouter] = None, reply_tokens: Optional[int] = None):
        self.backend = backend
        self.age_group, self.language = age_group, language
        self.memory_tokens = memory_tokens
        self.max_sentence_words = max_sentence_words
        self.steer_retries = steer_retries
        self.reply_tokens = reply_tokens  # llm.max_new_tokens: a story's length is planned to fit it
        self.router = router or IntentRouter()  # the patterns alone unless given the meaning classifier
        self.history: list[dict[str, str]] = []  # user/assistant turns, oldest first
        self.last_said: list[str] = []  # the sentences of the last reply the child heard ("say that again")
        self._clean_reply: Optional[str] = None  # the last reply as generated, when nothing was blocked or cut

    @property
    def has_story(self) -> bool:
        """Whether a story has been told in this session (so it can be continued or changed)."""
        return any(m["role"] == "assistant" for m in self.history)

    def warm_up(self) -> None:
        """Let a backend that keeps its KV cache (llama.cpp) read the system prompt before the first turn."""
        try:
            self.backend.prime([self._system()])
        except Exception:  # noqa: BLE001 - only a head start is lost; the first turn reads the prompt itself
            log.debug("warm-up skipped", exc_info=True)

    def check_budget(self, max_new_tokens: int, request_tokens: int) -> None:
        """Raise ConfigError when llm.memory_tokens cannot hold the system prompt and a request, or the model cannot hold it and the reply."""
        system = self.backend.count_tokens([self._system()])
        if self.memory_tokens < system + request_tokens:
            raise ConfigError(f"llm.memory_tokens: {self.memory_tokens} cannot hold the system prompt ({system} tokens) and a "
                              f"request (story.max_request_tokens {request_tokens}); set it to at least {system + request_tokens}")
        context = self.backend.context_tokens
        if context is not None and self.memory_tokens + max_new_tokens > context:
            raise ConfigError(f"llm.memory_tokens ({self.memory_tokens}) + llm.max_new_tokens ({max_new_tokens}) is more than "
                              f"the model's context ({context} tokens); lower one of them")

    def reset(self) -> None:
        """Forget the conversation (a new child at the kiosk), with what the model and the router keep of it."""
        self.history.clear()
        self.last_said = []
        self.backend.forget()
        self.router.forget()

    def messages_for(self, child_text: str, mode: Mode, instruction: str = "") -> list[dict[str, str]]:
        """System prompt + as much recent history as fits the token budget + the new turn."""
        system = self._system()
        turn = {"role": "user", "content": user_prompt(child_text, mode, self.language, self.age_group, instruction)}
        history = list(self.history)
        # Drop the oldest exchange (user + assistant) until the prompt fits; the new turn always stays.
        while history and self.backend.count_tokens([system, *history, turn]) > self.memory_tokens:
            history = history[2:] if len(history) >= 2 else []
        return [system, *history, turn]

    def _system(self) -> dict[str, str]:
        return {"role": "system", "content": system_prompt(self.age_group, self.language, self.reply_tokens)}

    def intent_of(self, child_text: str) -> Decision:
        """What the child's words ask for, given the conversation so far."""
        return self.router.decide(child_text, Context(has_story=self.has_story))

    def mode_of(self, child_text: str) -> Mode:
        """The mode the child's words ask for."""
        return self.intent_of(child_text).mode

    def played(self, count: int) -> None:
        """Only the first `count` sentences of the last reply were heard (the child stopped it)."""
        self.last_said = self.last_said[:count]

    def complete(self, messages: list[dict[str, str]], cancel: Optional[threading.Event] = None) -> str:
        """A whole reply to a conversation of its own (an activity's question or judgement), outside the story's memory."""
        with closing(self.backend.stream(messages, cancel or threading.Event())) as pieces:
            return "".join(pieces)

    def stream(self, request: str, cancel: Optional[threading.Event] = None, decision: Optional[Decision] = None,
               turn: int = 0, instruction: str = "", check: Optional[Check] = None) -> Iterator[Reply]:
        """Yield FirstToken, then each Sentence that passes `check` as soon as it is complete, then ReplyDone.

        `request` is the child's words as screened by the turn; `decision` the mode it asks for (by
        default read from the words); `instruction` is added to the request. A sentence `check`
        stops is never yielded: a BlockedEvent is, and the story is steered back or closed.
        """
        cancel = cancel or threading.Event()
        decision = decision or self.intent_of(request)
        if decision.mode is Mode.REPEAT:
            yield from self._repeat(turn)
            return
        messages = self.messages_for(request, decision.mode, instruction)
        said: list[str] = []
        # A story the reply budget cuts ends on a closing line; an answer or a recap just stops.
        ending = lang.get(self.language).story_end if decision.mode in STORY_MODES else None
        pieces = yield from self._tell(messages, cancel, said, ending, _Out(turn, check))
        if said:
            # Remember what was actually said (the safe sentences), even if cut short, so "what
            # happens next?" works; history holds only what still fits the budget. A reply that
            # went through untouched is kept exactly as generated, so a backend that keeps its
            # KV cache between turns (llama.cpp) reuses it instead of reading it again.
            self.history = messages[1:] + [{"role": "assistant", "content": self._clean_reply or " ".join(said)}]
            self.last_said = said
        yield ReplyDone(text=" ".join(said), pieces=pieces, cancelled=cancel.is_set())

    def _repeat(self, turn: int) -> Iterator[Reply]:
        """Say the last sentence or two again, at once: no model, nothing added to the conversation."""
        again = to_repeat(self.last_said) or [lang.get(self.language).nothing_to_repeat]
        for index, text in enumerate(again):
            yield SentenceReady(turn=turn, index=index, text=text)
        yield ReplyDone(text=" ".join(again), pieces=0, cancelled=False)

    def _tell(self, messages: list[dict[str, str]], cancel: threading.Event, said: list[str],
              ending: Optional[str], out: "_Out") -> Iterator[Reply]:
        """Stream the model's reply sentence by sentence, steering it back after a blocked sentence.

        The end of the stream may be an unfinished sentence (the reply budget ran out): it is left
        out when a finished one was said, and the story ends on `ending` instead.
        """
        t0 = time.monotonic()
        pieces, started = 0, False
        prompt = messages
        raw: list[str] = []
        self._clean_reply = None
        for attempt in range(self.steer_retries + 1):
            splitter = SentenceSplitter(max_words=self.max_sentence_words, language=self.language)
            stopped = None
            # closing(): a break or an abandoned turn must end the model's worker thread at once.
            with closing(self.backend.stream(prompt, cancel)) as model_stream:
                for piece in model_stream:
                    if cancel.is_set():
                        break  # nothing after a cancel may reach the speaker
                    if not started and piece.strip():
                        started = True
                        yield FirstToken(time.monotonic() - t0)
                    pieces += 1
                    raw.append(piece)
                    stopped = yield from out.checked(splitter.feed(piece), said)
                    if stopped:
                        break
            cut = False
            if not stopped and not cancel.is_set():
                rest = splitter.flush()
                # Unfinished, and (where the budget is known) the reply ran to it: cut, not an odd ending.
                if rest and not finished(rest[-1]) and (self.reply_tokens is None or pieces >= self.reply_tokens // 2):
                    cut = True
                    if len(said) + len(rest) - 1 > 0:  # something finished was said: end on that
                        rest = rest[:-1]
                # The budget ran out on a full stop: the story was still cut, and closes the same way.
                cut = cut or (self.reply_tokens is not None and pieces >= self.reply_tokens)
                stopped = yield from out.checked(rest, said)
            if not stopped or cancel.is_set():
                if attempt == 0 and not stopped and not cancel.is_set() and not cut:
                    self._clean_reply = "".join(raw).strip()
                if cut and ending and not stopped and not cancel.is_set():
                    yield out.sentence(ending, said)
                return pieces
            if attempt < self.steer_retries:
                # Ask again from the last safe sentence, with the reason left out of the prompt.
                told = " ".join(said) or "..."
                prompt = [*messages, {"role": "assistant", "content": told},
                          {"role": "user", "content": STEER.format(age=self.age_group)}]
        yield out.sentence(lang.get(self.language).closing, said)
        return pieces


@dataclass(frozen=True)
class _Out:
    """The reply's sentences as the turn's events, each passed through the turn's output check first."""

    turn: int
    check: Optional[Check]

    def sentence(self, text: str, said: list[str]) -> SentenceReady:
        said.append(text)
        return SentenceReady(turn=self.turn, index=len(said) - 1, text=text)

    def checked(self, sentences: list[str], said: list[str]) -> Iterator[Reply]:
        """Yield each sentence that passes the check; on the first that fails, yield BlockedEvent and return True."""
        for text in sentences:
            verdict = self.check(text) if self.check else None
            if verdict is not None and not verdict.ok:
                yield BlockedEvent(turn=self.turn, stage="output", category=verdict.category or "", rule=verdict.rule or "",
                                   layer=verdict.layer or "", masked=verdict.masked)
                return True
            yield self.sentence(text, said)
        return False


def finished(sentence: str) -> bool:
    """Whether a sentence ends as a sentence does (a full stop, a question or an exclamation, maybe quoted)."""
    return re.search(r"[.!?…][\s\"'”’“‘»«)\]]*$", sentence.strip()) is not None  # "! »": French spacing


def to_repeat(said: list[str], short_words: int = 8) -> list[str]:
    """What "say that again" says: the last sentence, with the one before when the last is short."""
    if not said:
        return []
    if len(said) >= 2 and len(said[-1].split()) < short_words:
        return said[-2:]
    return said[-1:]

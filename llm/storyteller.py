"""The storyteller: conversation memory, story modes and prompts around a streaming model."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Union

from errors import ConfigError
from llm.backends import Backend
from llm.intent import Context, Decision, IntentRouter
from llm.prompts import NOTHING_TO_REPEAT, STORY_END, Mode, system_prompt, user_prompt
from llm.sentences import SentenceSplitter
from safety import lines

if TYPE_CHECKING:
    from safety.guard import SafetyGuard, Verdict

log = logging.getLogger(__name__)

# Modes whose reply is a story (it gets a closing line when the reply budget cuts it).
STORY_MODES = frozenset({Mode.NEW_STORY, Mode.CONTINUE, Mode.CHANGE, Mode.RETELL, Mode.LESSON, Mode.CHOICE})


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
    redirected: bool = False  # the child's request was not safe to tell: a redirect (or care) follows
    by: str = ""  # who chose the mode: "meaning", "patterns", "activity" (a choice), "safety" (a redirect)
    p: Optional[float] = None  # the intent classifier's probability of the mode's label


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


@dataclass(frozen=True)
class Blocked:
    """Something was stopped by the safety checks: what kind and why, with the unsafe part masked."""

    stage: str  # "input" (what the child said) or "output" (a sentence about to be spoken)
    category: str
    rule: str
    layer: str
    masked: str


StoryItem = Union[TurnPlan, FirstToken, Sentence, Blocked, ReplyDone]


class Storyteller:
    """Tell stories turn by turn: `stream(child_text)` yields the reply as complete sentences."""

    def __init__(self, backend: Backend, age_group: str, language: str, memory_tokens: int, max_sentence_words: int,
                 guard: Optional["SafetyGuard"] = None, steer_retries: int = 1, rng: Optional[random.Random] = None,
                 router: Optional[IntentRouter] = None, reply_tokens: Optional[int] = None):
        self.backend = backend
        self.age_group, self.language = age_group, language
        self.memory_tokens = memory_tokens
        self.max_sentence_words = max_sentence_words
        self.guard = guard  # None only in tests of the model plumbing itself
        self.steer_retries = steer_retries
        self.rng = rng or random.Random()
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
        prime = getattr(self.backend, "prime", None)
        if prime is None:
            return
        try:
            prime([self._system()])
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
        """Forget the conversation (a new child at the kiosk)."""
        self.history.clear()
        self.last_said = []
        meaning = getattr(self.guard, "meaning", None)
        # A backend that keeps caches of the conversation, and the encoder that keeps the child's last words.
        for keeper in (self.backend, self.router.encoder, getattr(meaning, "encoder", None)):
            forget = getattr(keeper, "forget", None)
            if forget is not None:
                forget()

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

    def stream(self, child_text: str, cancel: Optional[threading.Event] = None, decision: Optional[Decision] = None,
               instruction: str = "") -> Iterator[StoryItem]:
        """Yield TurnPlan, FirstToken, then each safe Sentence as soon as it is complete, then ReplyDone.

        With a guard, the child's words are checked first (personal information is taken out; an
        unsafe request becomes a redirect to a safe story), and every sentence is checked before
        it is yielded: a blocked one is never yielded, and the story is steered back or closed.
        `decision` is the mode decided beforehand (else it is read from the words); `instruction`
        is added to the request.
        """
        cancel = cancel or threading.Event()
        request, opening, blocked, tell = self._screen(child_text)
        if blocked is None or blocked.category == "personal_info":
            decision = decision or self.intent_of(request)
        else:
            decision, instruction = Decision(Mode.NEW_STORY, "new_story", "safety"), ""
        mode = decision.mode
        if mode is Mode.REPEAT and tell:
            yield from self._repeat(opening, blocked, decision)
            return
        messages = self.messages_for(request, mode, instruction)
        if blocked:
            yield blocked  # first, so a screen or log never shows the child's words unmasked
        redirected = blocked is not None and blocked.category != "personal_info"
        yield TurnPlan(mode, self.backend.count_tokens(messages), redirected=redirected, by=decision.by, p=decision.p)
        said = list(opening)
        for index, text in enumerate(opening):
            yield Sentence(index, text)
        pieces = 0
        if tell:
            # A story the reply budget cuts ends on a closing line; an answer or a recap just stops.
            ending = STORY_END.get(self.language, STORY_END["en"]) if mode in STORY_MODES else None
            pieces = yield from self._tell(messages, cancel, said, ending)
        if said[len(opening):]:
            # Remember what was actually said (the safe sentences), even if cut short, so "what
            # happens next?" works; history holds only what still fits the budget. A reply that
            # went through untouched is kept exactly as generated, so a backend that keeps its
            # KV cache between turns (llama.cpp) reuses it instead of reading it again.
            told = self._clean_reply if self._clean_reply and not opening else " ".join(said[len(opening):])
            self.history = messages[1:] + [{"role": "assistant", "content": told}]
        if said:
            self.last_said = said
        yield ReplyDone(text=" ".join(said), tokens=pieces, cancelled=cancel.is_set())

    def _repeat(self, opening: list[str], blocked: Optional[Blocked], decision: Decision) -> Iterator[StoryItem]:
        """Say the last sentence or two again, at once: no model, nothing added to the conversation."""
        again = to_repeat(self.last_said) or [NOTHING_TO_REPEAT.get(self.language, NOTHING_TO_REPEAT["en"])]
        if blocked:
            yield blocked
        yield TurnPlan(Mode.REPEAT, 0, by=decision.by, p=decision.p)
        said = [*opening, *again]
        for index, text in enumerate(said):
            yield Sentence(index, text)
        yield ReplyDone(text=" ".join(said), tokens=0, cancelled=False)

    def _screen(self, child_text: str) -> tuple[str, list[str], Optional[Blocked], bool]:
        """The request for the model, lines to say first, what was blocked, and whether to tell a story."""
        if self.guard is None:
            return child_text, [], None, True
        verdict = self.guard.check_input(child_text)
        if verdict.ok:
            return child_text, [], None, True
        blocked = _blocked("input", verdict)
        if verdict.category == "personal_info":
            # Take it out (the model, and a remote server, never see it) and go on with the request.
            return self.guard.redact(child_text), [lines.PRIVACY[self.language]], blocked, True
        if verdict.category == "self_harm":
            return "", [lines.SELF_HARM[self.language]], blocked, False
        if verdict.category == "disclosure":
            return "", [lines.CARE[self.language]], blocked, False
        say, request = lines.redirect(self.language, self.rng)
        return request, [say], blocked, True

    def _tell(self, messages: list[dict[str, str]], cancel: threading.Event, said: list[str],
              ending: Optional[str]) -> Iterator[StoryItem]:
        """Stream the model's reply sentence by sentence, steering it back after a blocked sentence.

        The end of the stream may be an unfinished sentence (the reply budget ran out): it is left
        out when a finished one was said, and the story ends on `ending` instead.
        """
        t0 = time.monotonic()
        first = len(said)
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
                    stopped = yield from self._checked(splitter.feed(piece), said)
                    if stopped:
                        break
            cut = False
            if not stopped and not cancel.is_set():
                rest = splitter.flush()
                # Unfinished, and (where the budget is known) the reply ran to it: cut, not an odd ending.
                if rest and not finished(rest[-1]) and (self.reply_tokens is None or pieces >= self.reply_tokens // 2):
                    cut = True
                    if len(said) + len(rest) - 1 > first:  # something finished was said: end on that
                        rest = rest[:-1]
                stopped = yield from self._checked(rest, said)
            if not stopped or cancel.is_set():
                if attempt == 0 and not stopped and not cancel.is_set() and not cut:
                    self._clean_reply = "".join(raw).strip()
                if cut and ending and not stopped and not cancel.is_set():
                    said.append(ending)
                    yield Sentence(len(said) - 1, ending)
                return pieces
            if attempt < self.steer_retries:
                # Ask again from the last safe sentence, with the reason left out of the prompt.
                told = " ".join(said) or "..."
                prompt = [*messages, {"role": "assistant", "content": told},
                          {"role": "user", "content": lines.STEER.format(age=self.age_group)}]
        closing_line = lines.CLOSING[self.language]
        said.append(closing_line)
        yield Sentence(len(said) - 1, closing_line)
        return pieces

    def _checked(self, sentences: list[str], said: list[str]) -> Iterator[StoryItem]:
        """Yield each sentence that passes the guard; on the first that fails, yield Blocked and return True."""
        for text in sentences:
            verdict = self.guard.check_output(text) if self.guard else None
            if verdict is not None and not verdict.ok:
                yield _blocked("output", verdict)
                return True
            said.append(text)
            yield Sentence(len(said) - 1, text)
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


def _blocked(stage: str, verdict: "Verdict") -> Blocked:
    return Blocked(stage, verdict.category or "", verdict.rule or "", verdict.layer or "", verdict.masked)

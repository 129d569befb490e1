"""One turn, top to bottom: the child's words screened once -> routed -> streamed -> each sentence checked -> spoken."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional, Protocol

import lang
from events import (Acknowledged, BlockedEvent, ErrorEvent, EventBus, Safeguarding, SentenceReady, SpeechEnd, TurnEnd,
                    TurnStart)
from errors import StorytellerAppError
from llm.intent import Decision
from llm.prompts import Mode
from llm.storyteller import STORY_MODES, FirstToken, ReplyDone, Storyteller
from safety.guard import Screened

if TYPE_CHECKING:
    from acknowledge import Acknowledger
    from activities.flow import Activities, Step
    from safety.guard import SafetyGuard, Verdict

log = logging.getLogger(__name__)

# What a child said that a teacher should know of (the child hears care, not a story).
SAFEGUARDING = ("disclosure", "self_harm")


def is_stop_word(text: str, language: str) -> bool:
    """The child said (only) a stop word, e.g. "Stop!" or "Arrête !"; "a bus stop story" is not one."""
    said = re.sub(r"[^\w\s'-]", " ", text.lower()).split()
    phrase = " ".join(said)
    words = lang.get(language).stop_words
    return len(said) <= 3 and any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", phrase) for w in words)


@dataclass(frozen=True)
class Heard:
    """What a turn answers: the child's words, when the child stopped, and how the listener knew (None: typed)."""

    text: str
    at: float = field(default_factory=time.monotonic)  # time.monotonic() at the end of speech (or of the typed line)
    ended: Optional[SpeechEnd] = None

    @classmethod
    def spoken(cls, transcript) -> "Heard":
        """The listener's transcript (audio.stt.Transcript) as a turn's input."""
        return cls(transcript.text, transcript.ended_at or time.monotonic(), transcript.ended)


@dataclass(frozen=True)
class RequestLimit:
    """The longest request a turn takes, in characters (checked first: it is free) and in tokens."""

    chars: int = 600
    tokens: int = 200

    def exceeded(self, text: str, count_tokens: Callable[[list[dict[str, str]]], int]) -> Optional[str]:
        """Why the request is too long, or None when it fits."""
        if len(text) > self.chars:
            return f"{len(text)} characters (story.max_request_chars is {self.chars})"
        tokens = count_tokens([{"role": "user", "content": text}])
        if tokens > self.tokens:
            return f"{tokens} tokens (story.max_request_tokens is {self.tokens})"
        return None


class Speech(Protocol):
    """What a turn needs of the speaker (audio.speak.Speaker): callbacks tell it what the child heard."""

    def say(self, text: str, started: Optional[Callable[[], None]] = None,
            played: Optional[Callable[[], None]] = None) -> None: ...
    def stop(self) -> None: ...
    def cue(self) -> None: ...
    def wait_idle(self, timeout: Optional[float] = None) -> bool: ...


@dataclass(frozen=True)
class Stages:
    """What a turn runs through, built once by main.py; a stage left None is not there (text mode has no speaker)."""

    storyteller: Storyteller
    bus: EventBus
    show: Callable[[str], None]  # prints (or shows) each sentence
    guard: Optional["SafetyGuard"] = None  # None only in tests of the model plumbing itself
    speaker: Optional[Speech] = None
    acknowledger: Optional["Acknowledger"] = None  # a spoken courtesy while the model reads the prompt
    activities: Optional["Activities"] = None  # questions and choices; None: stories only
    request_limit: RequestLimit = RequestLimit()

    @property
    def language(self) -> str:
        """The language the child is answered in."""
        return self.storyteller.language


class Turn:
    """One turn of the conversation: `run()` answers it, and is the whole of it, read top to bottom."""

    def __init__(self, stages: Stages, number: int, heard: Heard, cancel: threading.Event):
        self.stages, self.number, self.heard, self.cancel = stages, number, heard, cancel
        self.started_at = time.monotonic()
        self.marks: dict[str, float] = {}  # first_token, first_sentence, first_audio, first_story_audio (s from heard.at)
        self.lines: list[str] = []  # every line said this turn, in order (SentenceReady.index)
        self.begun: set[int] = set()  # lines the child began to hear
        self.played: set[int] = set()  # lines the child heard whole
        self.answered = False  # a story or an activity answered it (it counts as one of the session's turns)
        self._ack: Optional[threading.Timer] = None  # an acknowledgement waiting to see whether the story comes first
        self._ack_lock = threading.Lock()  # the waiting line and the turn's first line: one of them is first, whole
        self._spoke = False  # a line of this turn was queued: the child is not waiting in silence

    def run(self) -> Optional[TurnEnd]:
        """Answer the child: screen once, route (an activity or a story), stream, check each sentence, speak."""
        st, acts, text = self.stages.storyteller, self.stages.activities, self.heard.text
        if not text.strip() and not (acts and acts.waiting):
            return None  # silence (a question's timeout) after the activity ended, e.g. at "next child"
        if is_stop_word(text, st.language):
            # "Stop" ends what is going on (the story was stopped by whoever heard the word); it
            # never starts a story of its own.
            step = acts.stop() if acts is not None else None
            return self._activity(step) if step is not None else None
        too_long = self.stages.request_limit.exceeded(text, st.backend.count_tokens)
        if too_long:
            log.info("request too long: %s", too_long)
            self._emit(ErrorEvent(stage="input", message=f"request too long: {too_long}"))
            self._say(lang.get(st.language).too_long, announce=False)
            self._finish_speech()
            return None
        screened = self.stages.guard.screen(text) if self.stages.guard and text.strip() else Screened(text)
        if acts is not None and screened.redirected:
            acts.reset()  # an unsafe answer ends the activity; the story is about something else
        elif acts is not None:
            try:
                step = acts.handle(screened.request, self.cancel)
            except Exception as err:  # noqa: BLE001 - a failed activity ends; the session goes on
                acts.reset()
                self.fault("activities", err)
                self._finish_speech()  # the apology is heard whole before the microphone listens again
                return None
            if step is not None:
                return self._activity(step, screened)
        decision = (Decision(Mode.NEW_STORY, "new_story", "safety") if screened.redirected
                    else st.intent_of(screened.request))  # never raises: it falls back to the patterns
        return self._story(screened, decision)

    def _story(self, screened: Screened, decision: Decision) -> Optional[TurnEnd]:
        """The storyteller answers, every sentence checked and spoken; afterwards an activity may start."""
        st, acts = self.stages.storyteller, self.stages.activities
        self.answered = True
        first = len(self.lines)  # a choice's own line comes before the story along it
        if screened.verdict is not None:
            self._blocked_input(screened.verdict)  # first: a screen or log never shows the words unmasked
        if not screened.tell:
            st.last_said = list(screened.say)  # "say that again" after care repeats the care, not the last story
        self._emit(TurnStart(turn=self.number, text=self.heard.text, mode=decision.mode.value, mode_by=decision.by,
                             mode_p=decision.p))
        log.debug("turn %d: mode %s (by %s, p %s)", self.number, decision.mode.value, decision.by, decision.p)
        if not screened.redirected:
            self._acknowledge(decision.mode)
        for line in screened.say:
            self._say(line)
        instruction = acts.take_instruction(screened.request, decision.mode) if acts and not screened.redirected else ""
        story: list[int] = []  # the storyteller's own lines (indexes into self.lines)
        pieces = 0
        check = self.stages.guard.check_output if self.stages.guard else None
        started = time.monotonic()
        try:
            replies = st.stream(screened.request, self.cancel, decision, turn=self.number, instruction=instruction,
                                check=check) if screened.tell else iter(())
            for item in replies:
                if isinstance(item, FirstToken):
                    self._mark("first_token")
                elif isinstance(item, SentenceReady):
                    if not story and self.stages.acknowledger is not None:
                        self.stages.acknowledger.first_sentence(time.monotonic() - started)
                    story.append(self._say(item.text))
                elif isinstance(item, BlockedEvent):
                    self._emit(item)
                    log.info("safety: blocked output (%s)", item.category)
                elif isinstance(item, ReplyDone):
                    pieces = item.pieces
        except Exception as err:  # noqa: BLE001 - a crashed stage must not end the child's session
            self.fault("llm", err)
            self._finish_speech()
            return None
        told = [self.lines[i] for i in story]
        reply = range(first, len(self.lines))  # what turn_end counts: the reply, not the questions after it
        if acts and told and not self.cancel.is_set() and not screened.redirected and decision.mode in STORY_MODES:
            self._after_story(told, bool(instruction), lesson=decision.mode is Mode.LESSON)
        self._finish_speech()
        end = self._end(pieces, reply)
        if self.stages.speaker and story and decision.mode is not Mode.REPEAT:
            heard = next((n for n, i in enumerate(story) if i not in self.begun), len(story))
            if heard:
                st.played(heard)  # "say that again" means the last one the child heard (began to)
        return end

    def _activity(self, step: "Step", screened: Optional[Screened] = None) -> Optional[TurnEnd]:
        """An activity's lines (a question, praise, a hint), then the story along a choice when one was made."""
        self.answered = True
        if screened is not None and screened.verdict is not None:
            self._blocked_input(screened.verdict)  # personal information in an answer: the screen shows it masked
        for line in screened.say if screened else ():
            self._say(line)  # the privacy reminder comes first here too
        self._announce(step)
        if step.story and not self.cancel.is_set():
            return self._story(Screened(step.story), Decision(Mode.CHOICE, "choice", "activity"))
        self._finish_speech()
        return None

    def _after_story(self, told: list[str], ended_at_choice: bool, lesson: bool) -> None:
        """A choice to make, or questions about the story just told."""
        try:
            step = self.stages.activities.after_story(" ".join(told), told[-1], ended_at_choice, self.cancel, lesson=lesson)
        except Exception as err:  # noqa: BLE001 - the story was told; only the questions are lost
            self.fault("activities", err, apologise=False)
            return
        if step:
            self._announce(step)

    def _announce(self, step: "Step") -> None:
        """An activity's events on the bus, and its lines said as sentences of this turn."""
        if self.cancel.is_set():
            self.stages.activities.reset()  # "stop" came while the questions were being written
            return
        for event in step.events:
            self._emit(event)
        for line in step.say:
            self._say(line)

    # The parts every path above shares: speaking, marking the time, ending.

    def _say(self, text: str, announce: bool = True) -> int:
        """Show a line and queue it for speech (the model goes on writing meanwhile); its index in the turn.

        announce=False: a line about the app itself (too long, a failure), not one of the turn's sentences.
        """
        self._break_silence()
        index = len(self.lines) if announce else -1
        if announce:
            self.lines.append(text)
            self._mark("first_sentence")
            self._emit(SentenceReady(turn=self.number, index=index, text=text))
        self.stages.show(text)
        if self.stages.speaker and index < 0:
            self.stages.speaker.say(text)  # not one of the turn's sentences: it marks nothing
        elif self.stages.speaker:
            self.stages.speaker.say(text, started=lambda: self._begun(index), played=lambda: self.played.add(index))
        return index

    def _acknowledge(self, mode: Mode) -> None:
        """Said before the model reads the prompt, so there is no silence (not in text mode: there is no speaker).

        A model that has lately been quick to its first sentence is given a moment first: the line
        is said only if the story is not ready by then (acknowledge.Pace).
        """
        acker = self.stages.acknowledger
        ack = acker.line(mode) if acker and self.stages.speaker else None
        if not ack:
            return
        wait = acker.wait_s()
        if wait <= 0:
            self._say_ack(ack)
            return
        self._ack = threading.Timer(wait, self._ack_if_silent, args=(ack,))
        self._ack.name, self._ack.daemon = "ack-wait", True
        self._ack.start()

    def _ack_if_silent(self, ack: str) -> None:
        with self._ack_lock:  # held while it is queued: a story line said meanwhile comes after it
            if not self._spoke and not self.cancel.is_set():
                self._say_ack(ack)

    def _say_ack(self, ack: str) -> None:
        self._emit(Acknowledged(text=ack))
        self.stages.speaker.say(ack, started=lambda: self._mark("first_audio"))

    def _break_silence(self) -> None:
        """A line is being said: an acknowledgement still waiting is not needed any more."""
        with self._ack_lock:
            self._spoke = True
            if self._ack is not None:
                self._ack.cancel()

    def _begun(self, index: int) -> None:
        self.begun.add(index)
        self._mark("first_audio")
        self._mark("first_story_audio")

    def _blocked_input(self, verdict: "Verdict") -> None:
        self._emit(BlockedEvent(turn=self.number, stage="input", category=verdict.category or "", rule=verdict.rule or "",
                                layer=verdict.layer or "", masked=verdict.masked))
        log.info("safety: blocked input (%s)", verdict.category)
        if verdict.category in SAFEGUARDING:
            # For the teacher, without the child's words (the sinks keep them only when configured).
            log.warning("safeguarding: a child may need a grown-up's help (%s, turn %d)", verdict.category, self.number)
            self._emit(Safeguarding(turn=self.number, concern=verdict.category, words=self.heard.text))

    def _mark(self, step: str) -> None:
        """The first time a step happens, in seconds from the end of the child's speech."""
        self.marks.setdefault(step, round(time.monotonic() - self.heard.at, 4))

    def _end(self, pieces: int, reply: range) -> TurnEnd:
        ended, m = self.heard.ended, self.marks
        end = TurnEnd(turn=self.number, sentences=len(reply), tokens=pieces, cancelled=self.cancel.is_set(),
                      stt_s=None if ended is None else round(self.started_at - self.heard.at, 4),
                      first_token_s=m.get("first_token"), first_sentence_s=m.get("first_sentence"),
                      first_audio_s=m.get("first_audio"), first_story_audio_s=m.get("first_story_audio"),
                      total_s=round(time.monotonic() - self.heard.at, 4),
                      sentences_played=len(self.played.intersection(reply)) if self.stages.speaker else None,
                      end_silence_s=ended.silence_s if ended else None, end_words=ended.words if ended else "",
                      end_turn_p=ended.turn_p if ended else None)
        self._emit(end)
        log.debug("turn %d: stt %s s, first token %s s, first sentence %s s, first audio %s s (story %s s), total %s s",
                  self.number, end.stt_s, end.first_token_s, end.first_sentence_s, end.first_audio_s,
                  end.first_story_audio_s, end.total_s)
        return end

    def _emit(self, event) -> None:
        self.stages.bus.emit(event)

    def _finish_speech(self) -> None:
        """A cancelled turn goes silent at once; otherwise the turn ends when its speech does."""
        self._break_silence()  # nothing of this turn is said after it
        if not self.stages.speaker:
            return
        if self.cancel.is_set():
            self.stages.speaker.stop()
        else:
            self.stages.speaker.wait_idle()

    def fault(self, stage: str, err: BaseException, apologise: bool = True) -> None:
        """A stage failed: log it, announce it, and tell the child kindly; the session goes on."""
        report(self.stages, stage, err)
        if apologise:
            self._say(lang.get(self.stages.language).sorry, announce=False)


def report(stages: Stages, stage: str, err: BaseException) -> None:
    """Log a failed stage (a known error in one line, anything else with its traceback) and announce it."""
    if isinstance(err, StorytellerAppError):
        log.error("%s", err)
    else:
        log.exception("unexpected error in %s", stage)
    stages.bus.emit(ErrorEvent(stage=stage, message=str(err)))

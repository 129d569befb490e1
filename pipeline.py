"""One turn from the child's words to the storyteller's sentences, announced on the event bus."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Protocol

from acknowledge import Acknowledger
from events import (Acknowledged, BlockedEvent, ErrorEvent, EventBus, Safeguarding, SentenceReady, SessionEnd, SessionStart,
                    SpeechEnd, TurnEnd, TurnStart)
from errors import MicrophoneError, StorytellerAppError
from llm.intent import Decision
from llm.prompts import Mode
from llm.storyteller import STORY_MODES, Blocked, FirstToken, ReplyDone, Sentence, Storyteller, TurnPlan

if TYPE_CHECKING:
    from activities.flow import Activities, Step
    from audio.listen import Listener, Microphone
    from audio.stt import Transcript

log = logging.getLogger(__name__)

# What the child hears when a turn fails, so silence never means "it's broken".
SORRY = {
    "en": "Oops, my story book got stuck. Can you ask me again?",
    "fr": "Oups, mon livre d'histoires s'est coincé. Tu peux me redemander ?",
    "de": "Hoppla, mein Geschichtenbuch klemmt. Kannst du mich noch einmal fragen?",
}
# What a child said that a teacher should know of (the child hears care, not a story).
SAFEGUARDING = ("disclosure", "self_harm")
# What the child hears when a request is longer than the limits (a pasted page, a stuck key).
TOO_LONG = {
    "en": "That's a lot of words! Can you tell me in a shorter way?",
    "fr": "Ça fait beaucoup de mots ! Tu peux me le dire plus court ?",
    "de": "Das sind aber viele Wörter! Kannst du es mir kürzer sagen?",
}


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


@dataclass
class _Marks:
    """Seconds from the end of the child's speech (or typed line) to each step of the current turn."""

    t0: float
    transcript: Optional[float] = None
    first_token: Optional[float] = None
    first_sentence: Optional[float] = None
    first_audio: Optional[float] = None
    first_story_audio: Optional[float] = None
    ack: Optional[str] = None  # the acknowledgement line said this turn
    played: list[str] = field(default_factory=list)  # sentences played whole this turn (speak_end)
    started: list[str] = field(default_factory=list)  # sentences begun this turn (speak_start), the ack included

    def heard(self, told: list[str]) -> int:
        """How many of the turn's sentences, from the first, the child began to hear."""
        begun, count = list(self.started), 0
        for text in told:
            if text not in begun:
                break
            begun.remove(text)
            count += 1
        return count

    def mark(self, step: str) -> None:
        """Record the first time a step happens."""
        if getattr(self, step) is None:
            setattr(self, step, round(time.monotonic() - self.t0, 4))


STOP_WORDS = {
    "en": ("stop", "stop it", "stop please", "please stop", "be quiet", "that's enough"),
    "fr": ("stop", "arrête", "arrêtes", "arrête-toi", "tais-toi", "ça suffit"),
    "de": ("stopp", "stop", "hör auf", "aufhören", "sei still", "genug"),
}
# Longest pause between attempts to reopen a failed microphone.
MIC_RETRY_MAX_S = 10.0
# Longer speech while the app talks is not transcribed in half-duplex: a stop word is short.
STOP_WORD_MAX_S = 2.0


def _how_it_ended(ended: Optional[SpeechEnd]) -> dict:
    """turn_end's end_* fields from the listener's speech_end (none for a typed turn)."""
    if ended is None:
        return {}
    return {"end_silence_s": ended.silence_s, "end_words": ended.words, "end_turn_p": ended.turn_p}


def is_stop_word(text: str, language: str) -> bool:
    """The child said (only) a stop word, e.g. "Stop!" or "Arrête !"; "a bus stop story" is not one."""
    said = re.sub(r"[^\w\s'-]", " ", text.lower()).split()
    phrase = " ".join(said)
    return len(said) <= 3 and any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", phrase) for w in STOP_WORDS.get(language, STOP_WORDS["en"]))


class Voice(Protocol):
    """What the session needs of the speaker (audio.speak.Speaker)."""

    def say(self, text: str) -> None: ...
    def stop(self) -> None: ...
    def wait_idle(self, timeout: Optional[float] = None) -> bool: ...


class Session:
    """Runs turns one after another: each sentence is shown (printed) and, with a speaker, spoken."""

    def __init__(
        self,
        storyteller: Storyteller,
        bus: EventBus,
        show: Callable[[str], None],
        speaker: Optional[Voice] = None,
        acknowledger: Optional[Acknowledger] = None,
        activities: Optional["Activities"] = None,
        answer_timeout_s: float = 8.0,
        request_limit: RequestLimit = RequestLimit(),
        idle_reset_s: float = 0.0,
    ):
        self.storyteller, self.bus, self.show, self.speaker = storyteller, bus, show, speaker
        self.activities = activities  # questions and choices; None: stories only
        self.answer_timeout_s = answer_timeout_s  # hands-free: silence this long answers a question
        self.acknowledger = acknowledger if speaker else None  # a spoken courtesy: text mode skips it
        self.request_limit = request_limit
        self._running: Optional[threading.Event] = None  # the cancel event of the turn being answered
        self.turns = 0
        # One child's session: it ends after idle_reset_s without a turn (0: never) or at the teacher's "next child".
        self.idle_reset_s = idle_reset_s
        self.session, self._turns_before = 1, 0
        self.paused = threading.Event()  # the teacher paused the kiosk: nothing is answered until resumed
        self._turn_lock = threading.RLock()  # a turn and a session change never overlap
        self._idle_timer: Optional[threading.Timer] = None
        self._marks: Optional[_Marks] = None
        bus.subscribe(self._on_event)

    def say(self, text: str) -> None:
        """Show a sentence and queue it for speech; the model goes on writing meanwhile."""
        self.show(text)
        if self.speaker:
            self.speaker.say(text)

    def run_turn(self, child_text: str, cancel: Optional[threading.Event] = None, stt_s: Optional[float] = None,
                 ended: Optional[SpeechEnd] = None) -> Optional[TurnEnd]:
        """Answer one turn: an answer to a running activity, or a story turn; never fatal.

        Latencies are measured from the end of the child's speech: `stt_s` (transcription time)
        before this call, or from the typed line in --text mode. `ended`: how the listener decided
        the child had finished, reported in turn_end.
        """
        cancel = cancel or threading.Event()
        with self._turn_lock:
            self._running = cancel  # before the pause check: a pause() from now on cancels this turn
            try:
                if self.paused.is_set():
                    log.info("paused by the teacher: the turn is not answered")
                    return None
                return self._turn(child_text, cancel, stt_s, ended)
            finally:
                self._running = None
                self._arm_idle()

    @property
    def session_turns(self) -> int:
        """Turns answered in this child's session (stories, answers, activities)."""
        return self.turns - self._turns_before

    def new_session(self, reason: str) -> None:
        """The next child: memory, caches, activities and screen cleared; session_end, then session_start."""
        if self._running is not None:
            self._running.set()  # a story being told ends now (the turn's lock is then soon free)
            if self.speaker:
                self.speaker.stop()
        with self._turn_lock:
            self.bus.emit(SessionEnd(session=self.session, reason=reason, turns=self.session_turns))
            st = self.storyteller
            st.reset()
            if self.activities is not None:
                self.activities.new_child(st.age_group, st.language)
            self.session, self._turns_before = self.session + 1, self.turns
            log.info("session %d: a fresh start (%s)", self.session, reason)
            self.bus.emit(SessionStart(model=st.backend.description, fine_tuned=st.backend.fine_tuned, age_group=st.age_group,
                                       language=st.language, session=self.session, reason=reason))

    def pause(self) -> None:
        """The teacher's pause: what is being said stops, and nothing is answered until resume()."""
        self.paused.set()
        if self._running is not None:
            self._running.set()
        if self.speaker:
            self.speaker.stop()

    def resume(self) -> None:
        """Answer the children again."""
        self.paused.clear()

    def close(self) -> None:
        """Stop the idle clock (the session's only thread of its own)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()

    def _arm_idle(self) -> None:
        """(Re)start the idle clock after a turn: this long without the next one ends the session."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self.idle_reset_s > 0:
            self._idle_timer = threading.Timer(self.idle_reset_s, self._idle)
            self._idle_timer.name, self._idle_timer.daemon = "session-idle", True
            self._idle_timer.start()

    def _idle(self) -> None:
        # A turn that runs now re-arms the clock when it ends: then this one has nothing to do.
        if not self._turn_lock.acquire(blocking=False):
            return
        try:
            if self.session_turns:
                self.new_session("idle")
        finally:
            self._turn_lock.release()

    def _turn(self, child_text: str, cancel: threading.Event, stt_s: Optional[float],
              ended: Optional[SpeechEnd]) -> Optional[TurnEnd]:
        if not child_text.strip() and not (self.activities and self.activities.waiting):
            return None  # silence (a question's timeout) after the activity ended, e.g. at "next child"
        if is_stop_word(child_text, self.storyteller.language):
            # "Stop" ends what is going on (the story was stopped by whoever heard the word); it
            # never starts a story of its own.
            step = self.activities.stop() if self.activities is not None else None
            if step is not None:
                self._activity_turn(step, cancel)
            return None
        too_long = self.request_limit.exceeded(child_text, self.storyteller.backend.count_tokens)
        if too_long:
            log.info("request too long: %s", too_long)
            self.bus.emit(ErrorEvent(stage="input", message=f"request too long: {too_long}"))
            self.say(TOO_LONG.get(self.storyteller.language, TOO_LONG["en"]))
            self._finish_speech(cancel)
            return None
        if self.activities is not None:
            try:
                step = self.activities.handle(child_text, cancel)
            except Exception as err:  # noqa: BLE001 - a failed activity ends; the session goes on
                self.activities.reset()
                self.fault("activities", err)
                return None
            if step is not None:
                return self._activity_turn(step, cancel)
        return self._story_turn(child_text, cancel, stt_s, ended=ended)

    def _activity_turn(self, step: "Step", cancel: threading.Event) -> Optional[TurnEnd]:
        """Say an activity's lines (a question, praise, a hint) and go on with the story if a choice was made."""
        self.turns += 1
        self._announce(step, cancel=cancel)
        if step.story and not cancel.is_set():
            return self._story_turn(step.story, cancel, None, Decision(Mode.CHOICE, "choice", "activity"))
        self._finish_speech(cancel)
        return None

    def _story_turn(self, child_text: str, cancel: threading.Event, stt_s: Optional[float],
                    decision: Optional[Decision] = None, ended: Optional[SpeechEnd] = None) -> Optional[TurnEnd]:
        """The storyteller answers; afterwards an activity may start (a choice to make, questions)."""
        self.turns += 1
        turn = self.turns
        marks = self._marks = _Marks(time.monotonic() - (stt_s or 0.0), transcript=None if stt_s is None else round(stt_s, 4))
        decision = decision or self.storyteller.intent_of(child_text)  # never raises: it falls back to the patterns
        instruction = self.activities.instruction_for(child_text, decision.mode) if self.activities else ""
        told: list[str] = []
        tokens, plan = 0, None
        try:
            for item in self.storyteller.stream(child_text, cancel, decision=decision, instruction=instruction):
                if isinstance(item, TurnPlan):
                    plan = item
                    self.bus.emit(TurnStart(turn=turn, text=child_text, mode=item.mode.value, mode_by=item.by, mode_p=item.p))
                    log.debug("turn %d: mode %s (by %s, p %s)", turn, item.mode.value, item.by, item.p)
                    # Said before the model reads the prompt, so there is no silence; not before a redirect,
                    # and not before a repeat (the sentence itself comes at once).
                    ack = self.acknowledger.line(item.mode) if self.acknowledger and not item.redirected else None
                    if ack:
                        marks.ack = ack
                        self.bus.emit(Acknowledged(text=ack))
                        self.speaker.say(ack)
                elif isinstance(item, FirstToken):
                    marks.mark("first_token")
                elif isinstance(item, Sentence):
                    marks.mark("first_sentence")
                    told.append(item.text)
                    self.bus.emit(SentenceReady(turn=turn, index=item.index, text=item.text))
                    self.say(item.text)
                elif isinstance(item, Blocked):
                    self.bus.emit(BlockedEvent(turn=turn, stage=item.stage, category=item.category,
                                               rule=item.rule, layer=item.layer, masked=item.masked))
                    log.info("safety: blocked %s (%s)", item.stage, item.category)
                    if item.stage == "input" and item.category in SAFEGUARDING:
                        # For the teacher, without the child's words (the sinks keep them only when configured).
                        log.warning("safeguarding: a child may need a grown-up's help (%s, turn %d)", item.category, turn)
                        self.bus.emit(Safeguarding(turn=turn, concern=item.category, words=child_text))
                elif isinstance(item, ReplyDone):
                    tokens = item.tokens
        except Exception as err:  # noqa: BLE001 - a crashed stage must not end the child's session
            self.fault("llm", err)
            self._finish_speech(cancel)
            return None
        if self.activities and told and not cancel.is_set() and plan and not plan.redirected and plan.mode in STORY_MODES:
            self._after_story(told, bool(instruction), cancel, lesson=plan.mode is Mode.LESSON)
        self._finish_speech(cancel)
        end = TurnEnd(turn=turn, sentences=len(told), tokens=tokens, cancelled=cancel.is_set(), stt_s=marks.transcript,
                      first_token_s=marks.first_token, first_sentence_s=marks.first_sentence,
                      first_audio_s=marks.first_audio, first_story_audio_s=marks.first_story_audio, total_s=round(time.monotonic() - marks.t0, 4),
                      sentences_played=sum(min(told.count(t), marks.played.count(t)) for t in set(told)) if self.speaker else None,
                      **_how_it_ended(ended))
        self.bus.emit(end)
        if self.speaker and told and plan is not None and plan.mode is not Mode.REPEAT:
            heard = marks.heard(told)  # "say that again" means the last one the child heard (began to)
            if heard:
                self.storyteller.played(heard)
        log.debug("turn %d: stt %s s, first token %s s, first sentence %s s, first audio %s s (story %s s), total %s s",
                  turn, end.stt_s, end.first_token_s, end.first_sentence_s, end.first_audio_s,
                  end.first_story_audio_s, end.total_s)
        return end

    def _after_story(self, told: list[str], ended_at_choice: bool, cancel: threading.Event, lesson: bool) -> None:
        try:
            step = self.activities.after_story(" ".join(told), told[-1], ended_at_choice, cancel, lesson=lesson)
        except Exception as err:  # noqa: BLE001 - the story was told; only the questions are lost
            self.fault("activities", err, apologise=False)
            return
        if step:
            self._announce(step, first_index=len(told), cancel=cancel)

    def _announce(self, step: "Step", first_index: int = 0, cancel: Optional[threading.Event] = None) -> None:
        """An activity's events on the bus and its lines shown and spoken, as sentences of this turn."""
        if cancel is not None and cancel.is_set():
            self.activities.reset()  # "stop" came while the questions were being written
            return
        for event in step.events:
            self.bus.emit(event)
        for index, text in enumerate(step.say, start=first_index):
            self.bus.emit(SentenceReady(turn=self.turns, index=index, text=text))
            self.say(text)

    def fault(self, stage: str, err: BaseException, apologise: bool = True) -> None:
        """A stage failed: log it, announce it, and tell the child kindly; the session goes on."""
        if isinstance(err, StorytellerAppError):
            log.error("%s", err)
        else:
            log.exception("unexpected error in %s", stage)
        self.bus.emit(ErrorEvent(stage=stage, message=str(err)))
        if apologise:
            self.say(SORRY.get(self.storyteller.language, SORRY["en"]))

    def _on_event(self, record: dict) -> None:
        if record["event"] == "speak_start" and self._marks is not None:
            self._marks.started.append(record["text"])
            self._marks.mark("first_audio")
            if record["text"] != self._marks.ack:
                self._marks.mark("first_story_audio")
        elif record["event"] == "speak_end" and self._marks is not None:
            self._marks.played.append(record["text"])  # what the child really heard, for turn_end

    def _finish_speech(self, cancel: threading.Event) -> None:
        """A cancelled turn goes silent at once; otherwise the turn ends when its speech does."""
        if not self.speaker:
            return
        if cancel.is_set():
            self.speaker.stop()
        else:
            self.speaker.wait_idle()

    def run_recording(self, listener: "Listener", path: str) -> None:
        """--input-wav: one turn from a recording, through the same VAD and Whisper path as the microphone."""
        from audio.listen import wav_frames

        heard = listener.listen(wav_frames(path), threading.Event())
        if heard:
            self.run_turn(heard.text, stt_s=heard.seconds, ended=heard.ended)

    def run_voice(self, listener: "Listener", mic: "Microphone", stop: threading.Event, barge_in: bool = False) -> None:
        """Hands-free: listen, answer while still listening, back to listening, until stop is set."""
        log.info("listening (Ctrl-C to end)")
        heard: Optional[Transcript] = None
        mic_failures = 0
        while not stop.is_set():
            try:
                heard = heard or self._listen(listener, mic, stop)
                mic_failures = 0
            except MicrophoneError as err:
                # Say sorry once, then keep reopening the device with a growing pause.
                self.fault("microphone", err, apologise=mic_failures == 0)
                mic_failures += 1
                self._reopen(mic, stop, delay=min(MIC_RETRY_MAX_S, 0.5 * 2**mic_failures))
                heard = None
                continue
            except Exception as err:  # noqa: BLE001 - Whisper or the VAD failed on this turn
                self.fault("listen", err)
                if self.speaker:
                    self.speaker.wait_idle()
                mic.drain()
                heard = None
                continue
            if heard and not is_stop_word(heard.text, self.storyteller.language):
                heard = self._answer_while_listening(heard, listener, mic, stop, barge_in)
            else:
                if heard and self.activities and self.activities.waiting:
                    self._activity_turn(self.activities.stop(), threading.Event())  # "stop" ends the questions
                heard = None

    def _listen(self, listener: "Listener", mic: "Microphone", stop: threading.Event) -> Optional[Transcript]:
        """The next utterance; while a question waits, silence for answer_timeout_s is an (empty) answer."""
        if not (self.activities and self.activities.waiting):
            return listener.listen(mic.read(stop), stop)
        from audio.stt import Transcript

        quiet, spoke = threading.Event(), threading.Event()
        timer = threading.Timer(self.answer_timeout_s, lambda: spoke.is_set() or quiet.set())
        timer.daemon = True
        timer.start()
        try:
            heard = listener.listen(mic.read(quiet), quiet, on_start=spoke.set)
        finally:
            timer.cancel()
        if heard is None and quiet.is_set() and not stop.is_set():
            return Transcript("", self.storyteller.language, 0.0, 0.0)
        return heard

    def _reopen(self, mic: "Microphone", stop: threading.Event, delay: float) -> None:
        """Wait, then try to open the microphone again; a failure is logged and retried by the loop."""
        if self.speaker:
            self.speaker.wait_idle()
        stop.wait(delay)
        try:
            mic.restart()
        except MicrophoneError as err:
            log.error("%s", err)

    def _answer_while_listening(
        self, heard: Transcript, listener: "Listener", mic: "Microphone", stop: threading.Event, barge_in: bool
    ) -> Optional[Transcript]:
        """Answer in a worker thread while the microphone is watched; returns a barge-in's words.

        The stop word always stops the answer. Half-duplex (default): anything else heard while the
        app speaks (its own voice, on a real kiosk) is dropped. Barge-in: a child speaking stops
        speech and generation the moment their speech is confirmed, and their words are the next turn.
        """
        cancel, done = threading.Event(), threading.Event()

        def answer() -> None:
            try:
                self.run_turn(heard.text, cancel, stt_s=heard.seconds, ended=heard.ended)
            finally:
                done.set()

        def interrupt() -> None:
            cancel.set()
            if self.speaker:
                self.speaker.stop()

        worker = threading.Thread(target=answer, name="turn", daemon=True)
        worker.start()
        next_turn = None
        try:
            while not done.is_set() and not stop.is_set():
                overheard = listener.listen(mic.read(done), done, on_start=interrupt if barge_in else None,
                                            max_seconds=None if barge_in else STOP_WORD_MAX_S, announce=False)
                if overheard is None:
                    break
                if is_stop_word(overheard.text, self.storyteller.language):
                    interrupt()
                elif barge_in:
                    next_turn = overheard
                    break
        except KeyboardInterrupt:
            interrupt()  # Ctrl-C or SIGTERM: silence at once
            raise
        except Exception as err:  # noqa: BLE001 - the answer goes on; only the watching stopped
            self.fault("listen", err, apologise=False)
        finally:
            worker.join()
        if not barge_in:
            mic.drain()
        return next_turn

    def run_text(self, lines: Iterable[str], stop: threading.Event) -> None:
        """The --text loop: one line a turn until the input ends or stop is set.

        The lines are read by a thread of this loop's own, so that a stop word typed while a story
        is told ends it at once, as it does by voice; it cancels the turn of the line before it,
        whether that turn is running or still waiting its turn (the same for typed and piped input).
        """
        lines_in: queue.Queue = queue.Queue()
        reader = threading.Thread(target=self._read_lines, args=(lines, lines_in, stop), name="text-input", daemon=True)
        reader.start()
        while not stop.is_set():
            try:
                # Timed: the main thread must come back to Python often enough to see Ctrl-C or SIGTERM.
                item = lines_in.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is None:
                break
            line, cancel = item
            # An empty line is silence: nothing, unless a question waits for an answer.
            if line or (self.activities and self.activities.waiting):
                self.run_turn(line, cancel)

    def _read_lines(self, lines: Iterable[str], out: queue.Queue, stop: threading.Event) -> None:
        previous: Optional[threading.Event] = None
        try:
            for raw in lines:
                if stop.is_set():
                    break
                line = raw.strip()
                if previous is not None and is_stop_word(line, self.storyteller.language):
                    previous.set()
                    if self._running is previous and self.speaker:
                        self.speaker.stop()
                previous = threading.Event()
                out.put((line, previous))
        finally:
            out.put(None)

"""The session: one child's turns one after another, by voice, typed or from a recording; the turn itself is turn.py."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Optional, Union

from events import SessionEnd, SessionStart
from errors import MicrophoneError
import lang
from turn import Heard, Stages, Turn, is_stop_word, report

if TYPE_CHECKING:
    from audio.listen import Listener, Microphone
    from audio.stt import Transcript
    from events import TurnEnd

log = logging.getLogger(__name__)

# Longest pause between attempts to reopen a failed microphone.
MIC_RETRY_MAX_S = 10.0
# Longer speech while the app talks is not transcribed in half-duplex: a stop word is short.
STOP_WORD_MAX_S = 2.0
# While the app speaks, speech this short is transcribed for the stop word: a child's "Stop!" has
# about 0.22 s of loud voice, under min_speech_s, and over the story's echo less of it is heard.
# Barge-in still waits for min_speech_s of speech.
STOP_WORD_MIN_S = 0.12


class _Until:
    """When to stop listening over an answer: it is done (unless a barge-in is still being heard), or the session stops."""

    def __init__(self, done: threading.Event, barged: threading.Event, stop: threading.Event):
        self.done, self.barged, self.stop = done, barged, stop

    def is_set(self) -> bool:
        """Whether to stop listening now."""
        return self.stop.is_set() or (self.done.is_set() and not self.barged.is_set())


class Session:
    """Runs turns one after another, each on a worker of its own while the loop's thread watches for "stop"."""

    def __init__(self, stages: Stages, answer_timeout_s: float = 8.0, idle_reset_s: float = 0.0):
        self.stages = stages
        self.answer_timeout_s = answer_timeout_s  # hands-free: silence this long answers a question
        self._running: Optional[threading.Event] = None  # the cancel event of the turn being answered
        self.turns = 0
        # One child's session: it ends after idle_reset_s without a turn (0: never) or at the teacher's "next child".
        self.idle_reset_s = idle_reset_s
        self.session, self._turns_before = 1, 0
        self.paused = threading.Event()  # the teacher paused the kiosk: nothing is answered until resumed
        self._turn_lock = threading.RLock()  # a turn and a session change never overlap
        self._idle_timer: Optional[threading.Timer] = None

    @property
    def storyteller(self):
        """The session's storyteller (its language, age group and memory)."""
        return self.stages.storyteller

    @property
    def speaker(self):
        """The session's speaker, or None in text mode."""
        return self.stages.speaker

    @property
    def waiting(self) -> bool:
        """A question or a choice waits for the child's answer (silence counts as one)."""
        return self.stages.activities is not None and self.stages.activities.waiting

    def run_turn(self, said: Union[str, Heard], cancel: Optional[threading.Event] = None) -> Optional["TurnEnd"]:
        """Answer one turn (a typed line, or what the listener heard): an activity's or a story; never fatal."""
        heard = Heard(said) if isinstance(said, str) else said
        cancel = cancel or threading.Event()
        with self._turn_lock:
            self._running = cancel  # before the pause check: a pause() from now on cancels this turn
            try:
                if self.paused.is_set():
                    log.info("paused by the teacher: the turn is not answered")
                    return None
                turn = Turn(self.stages, self.turns + 1, heard, cancel)
                try:
                    return turn.run()
                finally:
                    if turn.answered:
                        self.turns = turn.number
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
            bus, st = self.stages.bus, self.stages.storyteller
            bus.emit(SessionEnd(session=self.session, reason=reason, turns=self.session_turns))
            st.reset()
            if self.stages.guard is not None:
                self.stages.guard.forget()
            if self.stages.activities is not None:
                self.stages.activities.new_child(st.age_group, st.language)
            self.session, self._turns_before = self.session + 1, self.turns
            log.info("session %d: a fresh start (%s)", self.session, reason)
            bus.emit(SessionStart(model=st.backend.description, fine_tuned=st.backend.fine_tuned, age_group=st.age_group,
                                  language=st.language, session=self.session, reason=reason))

    def set_audience(self, age_group: str, language: str) -> None:
        """Another age group or language from now on (the teacher's page): every stage that speaks or checks follows."""
        st, acts = self.stages.storyteller, self.stages.activities
        st.age_group, st.language = age_group, language
        if self.stages.guard is not None:
            self.stages.guard.set_audience(age_group, language)
        if acts is not None:
            acts.age_group, acts.language = age_group, language
        if self.stages.acknowledger is not None:
            self.stages.acknowledger.use_language(language)

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

    def fault(self, stage: str, err: BaseException, apologise: bool = True) -> None:
        """A stage outside a turn failed (the microphone, Whisper): log it, announce it, tell the child kindly."""
        report(self.stages, stage, err)
        if apologise:
            sorry = lang.get(self.storyteller.language).sorry
            self.stages.show(sorry)
            if self.speaker:
                self.speaker.say(sorry)

    def _answer(self, heard: Heard, cancel: threading.Event, done: Optional[threading.Event] = None) -> threading.Thread:
        """Start the turn on a worker: every loop answers this way, and its own thread stays free to watch."""
        def work() -> None:
            try:
                self.run_turn(heard, cancel)
            finally:
                if done is not None:
                    done.set()

        worker = threading.Thread(target=work, name="turn", daemon=True)
        worker.start()
        return worker

    def _wait(self, worker: threading.Thread, cancel: threading.Event) -> None:
        """Wait for a turn, seeing Ctrl-C or SIGTERM meanwhile (they silence it at once)."""
        try:
            while worker.is_alive():
                worker.join(0.1)  # timed: the main thread must come back to Python to see a signal
        except KeyboardInterrupt:
            self._interrupt(cancel)
            while worker.is_alive():
                worker.join(0.1)  # a second signal is still seen while the turn winds down
            raise

    def _interrupt(self, cancel: threading.Event) -> None:
        cancel.set()
        if self.speaker:
            self.speaker.stop()

    # The three loops: each turns its input into Heard and answers it the same way (_answer).

    def run_recording(self, listener: "Listener", path: str) -> None:
        """--input-wav: one turn from a recording, through the same VAD and Whisper path as the microphone."""
        from audio.listen import wav_frames

        transcript = listener.listen(wav_frames(path), threading.Event())
        if transcript:
            cancel = threading.Event()
            self._wait(self._answer(Heard.spoken(transcript), cancel), cancel)

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
            if line or self.waiting:
                self._wait(self._answer(Heard(line), cancel), cancel)

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

    def run_voice(self, listener: "Listener", mic: "Microphone", stop: threading.Event,
                  barge_in: Union[bool, Callable[[], bool]] = False) -> None:
        """Hands-free: listen, answer while still listening, back to listening, until stop is set.

        barge_in: whether a child's voice over the answer stops it; a callable is asked the moment
        speech starts (the echo canceller has settled), True always, False never (half-duplex).
        """
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
            if heard is None:
                continue
            if is_stop_word(heard.text, self.storyteller.language):
                if self.waiting:  # "stop" ends the questions (nothing is playing): said like any answer
                    cancel = threading.Event()
                    self._wait(self._answer(Heard.spoken(heard), cancel), cancel)
                    mic.drain()
                heard = None
            else:
                heard = self._answer_while_listening(heard, listener, mic, stop, barge_in)

    def _listen(self, listener: "Listener", mic: "Microphone", stop: threading.Event) -> Optional[Transcript]:
        """The next utterance; while a question waits, silence for answer_timeout_s is an (empty) answer."""
        if not self.waiting:
            return listener.listen(mic.read(stop), stop, on_cue=self._cue)
        from audio.stt import Transcript

        quiet, spoke = threading.Event(), threading.Event()
        timer = threading.Timer(self.answer_timeout_s, lambda: spoke.is_set() or quiet.set())
        timer.daemon = True
        timer.start()
        try:
            heard = listener.listen(mic.read(quiet), quiet, on_start=spoke.set, resume=False)  # answers end at once
        finally:
            timer.cancel()
        if heard is None and quiet.is_set() and not stop.is_set():
            return Transcript("", self.storyteller.language, 0.0, 0.0, ended_at=time.monotonic())
        return heard

    def _cue(self) -> None:
        """The child seems to have finished: the listening cue, while the listener waits a moment for more."""
        if self.speaker is not None and not self.paused.is_set():
            self.speaker.cue()

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
        self, heard: Transcript, listener: "Listener", mic: "Microphone", stop: threading.Event,
        barge_in: Union[bool, Callable[[], bool]],
    ) -> Optional[Transcript]:
        """Answer on the turn's worker while the microphone is watched; returns a barge-in's words.

        The stop word always stops the answer. Half-duplex: anything else heard while the app speaks
        (its own voice, on a kiosk without echo cancellation) is dropped. Barge-in: a child speaking
        stops speech and generation the moment their speech is confirmed, and their words are the
        next turn; asked per utterance, so that speech before the canceller settled is only watched for "stop".
        """
        allowed = barge_in if callable(barge_in) else (lambda: bool(barge_in))
        cancel, done = threading.Event(), threading.Event()
        worker = self._answer(Heard.spoken(heard), cancel, done)
        next_turn = None
        try:
            while not done.is_set() and not stop.is_set():
                barged = threading.Event()  # this utterance stopped the answer

                def interrupt() -> None:
                    if allowed():
                        barged.set()
                        self._interrupt(cancel)
                    else:
                        log.debug("speech over the answer before the echo canceller settled: heard for 'stop' only")

                # A child who barged in is heard to the end of what they say, though the answer they
                # cut ends (done) while they are still speaking: those words are the next turn.
                until = _Until(done, barged, stop)
                overheard = listener.listen(mic.read(until), until, on_start=interrupt if barge_in else None,
                                            max_seconds=None if barge_in else STOP_WORD_MAX_S, announce=False,
                                            short_s=STOP_WORD_MIN_S)
                if overheard is None:
                    break
                if is_stop_word(overheard.text, self.storyteller.language):
                    self._interrupt(cancel)
                elif barged.is_set():
                    next_turn = overheard
                    break
        except KeyboardInterrupt:
            self._interrupt(cancel)  # Ctrl-C or SIGTERM: silence at once
            raise
        except Exception as err:  # noqa: BLE001 - the answer goes on; only the watching stopped
            report(self.stages, "listen", err)
        finally:
            worker.join()
        if not barge_in:
            mic.drain()
        return next_turn

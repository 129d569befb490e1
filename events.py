"""The app's one event bus: subscribers get the typed events; JSON is made only at the sinks (here, wsserver.py)."""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

from errors import ConfigError, SinkError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every event; `name` is its "event" in the JSON the sinks write."""

    name: ClassVar[str] = "event"
    # Seconds since the bus started, stamped by EventBus.emit (None before). Keyword-only, so each
    # event's own fields stay positional; not compared, so a stamped event equals the one made.
    t: Optional[float] = field(default=None, kw_only=True, compare=False)

    def as_record(self) -> dict[str, Any]:
        """The event as a JSON-ready dict, as the sinks write it: {"event": name, "t": seconds, **fields}."""
        return {"event": self.name, **dataclasses.asdict(self)}  # t is the base's field: it comes first


@dataclass(frozen=True)
class SessionStart(Event):
    """The app is ready: which model and settings a session runs with."""

    name: ClassVar[str] = "session_start"
    model: str
    fine_tuned: bool
    age_group: str
    language: str
    session: int = 1  # counts the children's sessions since the app started
    reason: str = "start"  # start, idle (the last child left), teacher (next child)


@dataclass(frozen=True)
class SessionEnd(Event):
    """A child's session ended: the memory, caches, activities and screen are cleared for the next child."""

    name: ClassVar[str] = "session_end"
    session: int
    reason: str  # idle or teacher
    turns: int


@dataclass(frozen=True)
class TeacherAction(Event):
    """The teacher changed something from the teacher's page (applied at once)."""

    name: ClassVar[str] = "teacher"
    action: str
    value: Optional[str] = None
    ok: bool = True
    message: str = ""


@dataclass(frozen=True)
class TurnStart(Event):
    """A child's turn begins being answered."""

    name: ClassVar[str] = "turn_start"
    turn: int
    text: str
    mode: str
    mode_by: str = ""  # who chose it: meaning (the intent classifier), patterns, activity, safety
    mode_p: Optional[float] = None  # the classifier's probability of it


@dataclass(frozen=True)
class Acknowledged(Event):
    """The instant acknowledgement said while the model starts ("Ooh, let me think...")."""

    name: ClassVar[str] = "ack"
    text: str


@dataclass(frozen=True)
class SentenceReady(Event):
    """A complete sentence of the reply, ready to be spoken or shown."""

    name: ClassVar[str] = "sentence"
    turn: int
    index: int
    text: str


@dataclass(frozen=True)
class TurnEnd(Event):
    """A turn finished (or was cancelled), with its latency breakdown.

    Seconds from the end of the child's speech (or the typed line): stt_s when the transcript was
    ready, then the model's first token, first complete sentence, first audio played, and the end
    of the turn's speech (total_s). None for a step that did not happen.
    """

    name: ClassVar[str] = "turn_end"
    turn: int
    sentences: int
    tokens: int
    cancelled: bool
    stt_s: Optional[float]
    first_token_s: Optional[float]
    first_sentence_s: Optional[float]
    first_audio_s: Optional[float]
    first_story_audio_s: Optional[float]  # first audio that is the story, not the acknowledgement
    total_s: float
    # Of `sentences`, how many were played whole (the rest were cut by stop, lost with the speaker,
    # or failed in the voice); None without a speaker.
    sentences_played: Optional[int] = None
    # How the listener decided the child had finished (from its speech_end; None when typed): the
    # silence waited, the words' verdict when they decided early, the turn model's P(complete).
    end_silence_s: Optional[float] = None
    end_words: str = ""
    end_turn_p: Optional[float] = None


@dataclass(frozen=True)
class Listening(Event):
    """The app is waiting for the child to speak."""

    name: ClassVar[str] = "listening"


@dataclass(frozen=True)
class SpeechStart(Event):
    """Voice activity: the child started speaking."""

    name: ClassVar[str] = "speech_start"


@dataclass(frozen=True)
class SpeechEnd(Event):
    """Voice activity: the child stopped (forced: the utterance hit its maximum length or the input ended)."""

    name: ClassVar[str] = "speech_end"
    forced: bool
    silence_s: Optional[float] = None  # the silence waited before the turn was declared
    words: str = ""  # the words' verdict when they decided early ("ends on 'dragon'")
    turn_p: Optional[float] = None  # the turn model's P(complete) at that moment (audio/turn_model.py)


@dataclass(frozen=True)
class Heard(Event):
    """What the child said, as transcribed."""

    name: ClassVar[str] = "heard"
    text: str
    language: str
    duration: float


@dataclass(frozen=True)
class NoSpeech(Event):
    """The input ended (e.g. a recording) without any speech in it."""

    name: ClassVar[str] = "no_speech"


@dataclass(frozen=True)
class SpeakStart(Event):
    """The first sample of a sentence is being played."""

    name: ClassVar[str] = "speak_start"
    text: str


@dataclass(frozen=True)
class SpeakEnd(Event):
    """A sentence finished playing."""

    name: ClassVar[str] = "speak_end"
    text: str


@dataclass(frozen=True)
class SpeakStopped(Event):
    """A sentence was cut short, or not played at all, after played_s seconds.

    reason: "stop" (stop() cut it: the child said stop, or barged in) or "speaker" (the output
    device failed or is lost; the sentence was not heard, or only its first played_s seconds).
    """

    name: ClassVar[str] = "speak_stopped"
    text: str
    played_s: float
    reason: str = "stop"


@dataclass(frozen=True)
class WordSpoken(Event):
    """A word of the sentence being spoken is heard now (sent as its first sample is played)."""

    name: ClassVar[str] = "word"
    sentence: str
    index: int  # position among the sentence's words (text.split())
    word: str
    start: float  # seconds from the sentence's first sample, on the playback sample clock
    end: float


@dataclass(frozen=True)
class QuestionAsked(Event):
    """A comprehension question about the story was asked (its expected answer is not sent)."""

    name: ClassVar[str] = "question"
    number: int
    text: str


@dataclass(frozen=True)
class AnswerJudged(Event):
    """The child's answer to a question was judged."""

    name: ClassVar[str] = "answer_judged"
    number: int
    correct: bool
    hint: bool  # a hint and one more try follow
    dont_know: bool  # "I don't know" or silence
    method: str  # "match", "model" or "none"


@dataclass(frozen=True)
class ChoiceMade(Event):
    """The story paused at a choice and a way was picked."""

    name: ClassVar[str] = "choice"
    options: list
    chosen: str
    by: str  # "child", or "story" when the answer stayed unclear


@dataclass(frozen=True)
class BlockedEvent(Event):
    """The safety checks stopped something; the unsafe part is masked, never logged in plain form."""

    name: ClassVar[str] = "blocked"
    turn: int
    stage: str  # "input": what the child said; "output": a sentence that was not spoken
    category: str
    rule: str
    layer: str
    masked: str


@dataclass(frozen=True)
class Safeguarding(Event):
    """A child may need a grown-up's help: they told of harm or of wanting to hurt themselves.

    For the teacher; `words` (what the child said) leaves the app only with
    privacy.keep_transcripts, and then redacted.
    """

    name: ClassVar[str] = "safeguarding"
    turn: int
    concern: str  # "disclosure" (abuse, neglect, bullying) or "self_harm"
    words: str


@dataclass(frozen=True)
class ErrorEvent(Event):
    """A stage failed; the session goes on."""

    name: ClassVar[str] = "error"
    stage: str
    message: str


@dataclass
class EventBus:
    """Fan out events to subscribers, each stamped with seconds since the bus started (its `t`).

    A subscriber that fails (a full disk under the events file, a bug in a display) never takes
    the session down: its error is logged once while it keeps failing, and the others are told
    with an `error` event.
    """

    clock: Callable[[], float] = time.monotonic
    _subscribers: list[tuple[str, Callable[[Event], None]]] = field(default_factory=list)
    _failing: set[int] = field(default_factory=set)  # ids of subscribers whose failure was reported
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._t0 = self.clock()

    def subscribe(self, fn: Callable[[Event], None], name: str = "") -> None:
        """Call fn(event) for every event from now on, the event stamped with its time; name is for errors."""
        with self._lock:
            self._subscribers.append((name or getattr(fn, "__qualname__", "subscriber"), fn))

    def emit(self, event: Event) -> Event:
        """Publish an event to every subscriber; returns it as sent, stamped with its time."""
        stamped = self._stamped(event)
        with self._lock:
            subscribers = list(self._subscribers)
        for name, fn in subscribers:
            try:
                fn(stamped)
            except Exception as err:  # noqa: BLE001 - one broken subscriber must not silence the kiosk
                self._failed(name, fn, err, subscribers)
            else:
                if id(fn) in self._failing:
                    self._failing.discard(id(fn))
                    log.warning("%s: working again", name)
        return stamped

    def _stamped(self, event: Event) -> Event:
        return dataclasses.replace(event, t=round(self.clock() - self._t0, 4))

    def _failed(self, name: str, failed: Callable, err: Exception, subscribers: list) -> None:
        if id(failed) in self._failing:
            return  # already said; it is retried with every event and says when it works again
        self._failing.add(id(failed))
        log.warning("%s failed: %s; the session goes on", name, err)
        error = self._stamped(ErrorEvent(stage=name, message=str(err)))
        for _, fn in subscribers:
            if fn is not failed and id(fn) not in self._failing:
                try:
                    fn(error)
                except Exception:  # noqa: BLE001 - reported when it fails on an event of its own
                    pass


class JsonLinesSink:
    """Append one JSON object per event to a file, written at once so another program can tail it.

    A failed write (a full disk, a removed drive) raises SinkError, and the bus reports it; the
    lines are kept in memory (up to MAX_PENDING) and written, in order, once the file can be
    written again, so nothing is lost to a passing fault.
    """

    MAX_PENDING = 10_000

    def __init__(self, path: str, scrub: Optional[Callable[[Event], Event]] = None):
        self.path = path
        try:
            # Unbuffered: each line goes to the OS at once, and a failed write leaves nothing half-buffered.
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise ConfigError(f"events.path: cannot write {path} ({err.strerror}); "
                              "pick a file in a folder that exists and can be written") from err
        self._lock = threading.Lock()
        self._scrub = scrub  # privacy: what may be kept on disk (safety.privacy.scrubber)
        self._pending: collections.deque[bytes] = collections.deque(maxlen=self.MAX_PENDING)
        self._torn = False  # a write failed part-way: the next one starts on a fresh line

    def __call__(self, event: Event) -> None:
        line = json.dumps((self._scrub(event) if self._scrub else event).as_record(), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file.closed:
                return
            self._pending.append(line.encode("utf-8"))
            while self._pending:
                data = (b"\n" if self._torn else b"") + self._pending[0]
                try:
                    written = self._file.write(data)
                except OSError as err:
                    raise SinkError(f"cannot write {self.path} ({err.strerror}); events are kept in memory "
                                    f"(up to {self.MAX_PENDING}) until it can") from err
                if written is not None and written < len(data):
                    self._torn = True  # the rest of the line is written again, after a newline
                    raise SinkError(f"{self.path} is full; events are kept in memory (up to {self.MAX_PENDING}) until it can be written")
                self._torn = False
                self._pending.popleft()

    def close(self) -> None:
        """Close the file; later events are dropped."""
        with self._lock:
            self._file.close()

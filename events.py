"""The app's one event bus: typed events in, JSON lines (and later WebSocket, logs) out."""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, TextIO


@dataclass(frozen=True)
class Event:
    """Base of every event; `name` is what subscribers see as "event"."""

    name: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """Fields of the event as a JSON-ready dict (without event name and time)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SessionStart(Event):
    """The app is ready: which model and settings a session runs with."""

    name: ClassVar[str] = "session_start"
    model: str
    fine_tuned: bool
    age_group: str
    language: str


@dataclass(frozen=True)
class TurnStart(Event):
    """A child's turn begins being answered."""

    name: ClassVar[str] = "turn_start"
    turn: int
    text: str
    mode: str


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
    """A sentence was cut short by stop() after played_s seconds."""

    name: ClassVar[str] = "speak_stopped"
    text: str
    played_s: float


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
class ErrorEvent(Event):
    """A stage failed; the session goes on."""

    name: ClassVar[str] = "error"
    stage: str
    message: str


@dataclass
class EventBus:
    """Fan out events to subscribers, stamped with seconds since the bus started."""

    clock: Callable[[], float] = time.monotonic
    _subscribers: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._t0 = self.clock()

    def subscribe(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call fn(record) for every event from now on; record is {"event", "t", **fields}."""
        with self._lock:
            self._subscribers.append(fn)

    def emit(self, event: Event) -> dict[str, Any]:
        """Publish an event to every subscriber; returns the record sent."""
        record = {"event": event.name, "t": round(self.clock() - self._t0, 4), **event.to_dict()}
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            fn(record)
        return record


class JsonLinesSink:
    """Append one JSON object per event to a file, flushed so another program can tail it."""

    def __init__(self, path: str, scrub: Optional[Callable[[dict[str, Any]], dict[str, Any]]] = None):
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._scrub = scrub  # privacy: what may be kept on disk (safety.privacy.scrubber)

    def __call__(self, record: dict[str, Any]) -> None:
        line = json.dumps(self._scrub(record) if self._scrub else record, ensure_ascii=False)
        with self._lock:
            if not self._file.closed:
                self._file.write(line + "\n")
                self._file.flush()

    def close(self) -> None:
        """Close the file; later events are dropped."""
        with self._lock:
            self._file.close()


class WebSocketSink:
    """Serve the event stream as JSON text messages to any number of local WebSocket clients.

    Each client gets its own bounded queue, so a slow or stuck client never holds up the app
    (its oldest events are dropped instead). Optionally the same port serves static pages over
    plain HTTP (`pages`: path -> (content type, bytes)), greets each new client with `hello()`
    (a catch-up message), and turns records into messages with `transform` (None: not sent).
    """

    QUEUE_SIZE = 1000

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8765,
        pages: Optional[dict[str, tuple[str, bytes]]] = None,
        hello: Optional[Callable[[], Optional[str]]] = None,
        transform: Optional[Callable[[dict[str, Any]], Optional[str]]] = None,
        setting: str = "events.websocket_port",
    ):
        from websockets.sync.server import serve

        self._clients: set = set()
        self._lock = threading.Lock()
        self.pages, self.hello = pages or {}, hello
        self.transform = transform or (lambda record: json.dumps(record, ensure_ascii=False))
        try:
            self.server = serve(self._handle, host, port, process_request=self._http if self.pages else None)
        except OSError as err:
            from errors import ConfigError

            raise ConfigError(f"cannot serve on {host}:{port} ({err.strerror}); set {setting}") from err
        self.port = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="websocket-server", daemon=True)
        self._thread.start()

    def _http(self, connection, request):  # plain GETs get the pages; the WebSocket lives at /ws
        from websockets.datastructures import Headers
        from websockets.http11 import Response

        path = request.path.split("?")[0]
        if path == "/ws":
            return None
        if path not in self.pages:
            return connection.respond(404, "not found\n")
        ctype, body = self.pages[path]
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))), ("Cache-Control", "no-cache")])
        return Response(200, "OK", headers, body)

    def _handle(self, connection) -> None:  # one thread per client, run by websockets
        q: queue.Queue = queue.Queue(maxsize=self.QUEUE_SIZE)
        with self._lock:
            self._clients.add(q)
            greeting = self.hello() if self.hello else None
        try:
            if greeting:
                connection.send(greeting)
            while (message := q.get()) is not None:
                connection.send(message)
        except Exception:  # noqa: BLE001 - the client went away
            pass
        finally:
            with self._lock:
                self._clients.discard(q)

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            # Under the lock, so a client that connects now gets either the greeting with this
            # record in it, or this record, never neither.
            message = self.transform(record)
            clients = list(self._clients)
        if message is None:
            return
        for q in clients:
            try:
                q.put_nowait(message)
            except queue.Full:
                pass

    def close(self) -> None:
        """Disconnect clients and stop serving."""
        with self._lock:
            for q in self._clients:
                q.put(None)
        self.server.shutdown()
        self._thread.join(timeout=1)

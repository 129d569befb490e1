"""The teacher's page: steer the kiosk from a tablet (pause, next child, age group, ...) behind a PIN.

One port, like the read-along screen: static pages over HTTP, commands and status over /ws. The
page itself holds nothing; the socket needs the PIN (WebSocketSink's token), on loopback too,
because any program on the kiosk could otherwise end a child's session. Guessing is slowed by a
lockout: too many wrong PINs and every handshake is refused for a while.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import lang
from errors import ConfigError
from events import Event, SessionEnd, SessionStart, TeacherAction
from screen.server import TYPES  # the same content types as the read-along screen
from settings import AGE_GROUPS, LANGUAGES, normalize_age_group
from wsserver import WebSocketSink, lan_address

log = logging.getLogger("storyteller.teacher")

# Its own folder, so screen.server.pages() (every asset directly in static/) never serves these.
STATIC = Path(__file__).with_name("static") / "teacher"
MIN_PIN = 4
QUESTIONS = {"off": "Off", "on_request": "When a child asks", "after_story": "After each story"}
NO_VALUE = ("pause", "resume", "next_child", "status")
ACTIONS = NO_VALUE + ("age_group", "language", "voice", "volume", "questions")
PUSH_ON = (TeacherAction, SessionStart, SessionEnd)  # the events after which the status changes
# What the page draws its choices from, sent with every status (the page has no list of its own to drift).
OPTIONS = {"age_groups": list(AGE_GROUPS), "languages": {code: lang.get(code).name for code in LANGUAGES},
           "questions": QUESTIONS}
# The page loads only its own files and talks only to its own server; nobody may frame it (clickjacking).
CSP = "default-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def parse_command(text: str) -> dict[str, Any]:
    """A checked command {"action": A} or {"action": A, "value": V} from a client's JSON text; ValueError if invalid."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError('a command is JSON, like {"action": "pause"}') from None
    if not isinstance(data, dict):
        raise ValueError('a command is a JSON object, like {"action": "volume", "value": 0.5}')
    extra = sorted(set(data) - {"action", "value"})
    if extra:
        raise ValueError(f"a command has only \"action\" and \"value\" (got {', '.join(map(repr, extra))})")
    action, value = data.get("action"), data.get("value")
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)} (got {action!r})")
    if action in NO_VALUE:
        if value is not None:
            raise ValueError(f"{action} takes no value (got {value!r})")
        return {"action": action}
    return {"action": action, "value": _check_value(action, value)}


def _check_value(action: str, value: Any) -> Any:
    if action == "age_group":
        if not isinstance(value, str):
            raise ValueError(f"age_group must be one of {', '.join(AGE_GROUPS)} (got {value!r})")
        try:
            return normalize_age_group(value)  # also takes "early-elementary" and the like
        except ValueError as err:
            raise ValueError(f"age_group {err}") from None
    if action == "language":
        if value not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)} (got {value!r})")
        return value
    if action == "voice":
        if not isinstance(value, str) or not value.strip() or len(value) > 100 or not value.isprintable():
            raise ValueError(f"voice must be a voice's name, 1 to 100 printable characters (got {value!r:.120})")
        return value.strip()
    if action == "volume":
        # bool is an int in Python: true/false is not a volume.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            raise ValueError(f"volume must be a number from 0.0 to 1.0 (got {value!r})")
        return float(value)
    if not isinstance(value, str) or value not in QUESTIONS:  # questions (a list is not hashable: check the type first)
        raise ValueError(f"questions must be one of {', '.join(QUESTIONS)} (got {value!r})")
    return value


def describe(command: dict[str, Any]) -> str:
    """What a command did, in words for the teacher ("Age group is now Toddlers")."""
    action, value = command["action"], command.get("value")
    return {
        "pause": "Paused", "resume": "Resumed", "next_child": "Ready for the next child: a fresh session",
        "status": "",
        "age_group": f"Age group is now {value}",
        "language": f"Language is now {lang.get(value).name if value in LANGUAGES else value}",
        "voice": f"Voice is now {value}",
        "volume": f"Volume is now {round(value * 100) if isinstance(value, float) else value}%",
        "questions": f"Questions: {QUESTIONS.get(value, value)}",
    }[action]


def pages() -> dict[str, tuple[str, bytes]]:
    """The page's three files, each under its own path only (no data in them: served without the PIN)."""
    found = {f"/{p.name}": (TYPES[p.suffix], p.read_bytes()) for p in STATIC.iterdir() if p.suffix in TYPES}
    found["/"] = found.pop("/teacher.html")
    return found


class TeacherServer(WebSocketSink):
    """The teacher's page and socket; subscribe it to the event bus so each page follows the status."""

    LOCK_AFTER = 5  # wrong PINs ...
    WINDOW_S = 60.0  # ... within this long, from anywhere, ...
    LOCK_S = 60.0  # ... and every handshake is refused for this long

    def __init__(self, host: str, port: int, *, pin: str, apply: Callable[[dict], dict],
                 status: Callable[[], dict], origins: tuple[str, ...] = (), max_clients: int = 4):
        if not isinstance(pin, str):  # YAML reads pin: 1234 as a number
            raise ConfigError(f"teacher.pin: must be text; set a PIN of at least {MIN_PIN} characters in quotes "
                              f"(teacher: pin: \"2468\")")
        if len(pin) < MIN_PIN:
            raise ConfigError(f"teacher.pin: the teacher's page needs one, on this machine too; set a PIN of at least "
                              f"{MIN_PIN} characters (teacher: pin: \"2468\", not one the children know)")
        self._apply, self._status = apply, status
        self._guard = threading.Lock()
        self._failures: collections.deque[float] = collections.deque()
        self._locked_until = 0.0
        super().__init__(host, port, pages=pages(), hello=self._status_message, transform=self._push,
                         token=pin, origins=origins, max_clients=max_clients, settings="teacher.",
                         on_message=self._command)
        self.stage = "teacher"

    # --- status and commands --------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        try:
            return dict(self._status())
        except Exception:  # the page still gets an answer; the bug is in the log
            log.exception("teacher's page: the app's status could not be read")
            return {"error": "the app's status could not be read (see its log)"}

    def _status_message(self) -> str:
        return json.dumps({"type": "status", "options": OPTIONS, **self._snapshot()}, ensure_ascii=False, default=str)

    def _push(self, event: Event) -> Optional[str]:
        # Only the status ever goes out: the teacher's page shows no child's words.
        return self._status_message() if isinstance(event, PUSH_ON) else None

    @staticmethod
    def _reply(fields: dict[str, Any]) -> str:
        return json.dumps({**fields, "type": "reply"}, ensure_ascii=False, default=str)

    def _command(self, text: str) -> str:
        try:
            command = parse_command(text)
        except ValueError as err:
            return self._reply({"ok": False, "error": str(err)})  # apply is never called with an invalid command
        if command["action"] == "status":
            return self._reply({"ok": True, "message": "", "status": self._snapshot()})
        try:
            result = dict(self._apply(command) or {})
        except Exception:
            log.exception("teacher's page: %s could not be applied", command["action"])
            return self._reply({"ok": False, "error": f"{command['action']} failed (see the app's log)",
                                "status": self._snapshot()})
        ok = bool(result.pop("ok", True))
        message = result.pop("message", None) or (describe(command) if ok else f"{command['action']} was refused")
        return self._reply({**result, "ok": ok, "message": message, "status": self._snapshot()})

    # --- who may connect ------------------------------------------------------------------

    def _process_request(self, connection, request):
        split = urlsplit(request.path)
        if split.path == "/access":
            # A browser cannot see why a handshake was refused: the page asks here to tell a wrong PIN from the
            # lockout or a full house. Holds nothing secret.
            return connection.respond(200, json.dumps({"locked_for": math.ceil(self._locked_for()),
                                                       "full": self._full()}) + "\n")
        if split.path != "/ws":
            return super()._process_request(connection, request)
        if self._locked_for() > 0:  # refused before the PIN is even looked at, so guesses tell nothing
            return connection.respond(429, "Too many wrong PINs: try again in a minute\n")
        response = super()._process_request(connection, request)
        if response is not None and response.status_code == 403 and self._a_wrong_pin(request, split.query):
            self._failed()
        return response

    def _a_wrong_pin(self, request, query: str) -> bool:
        """A wrong PIN from an allowed origin (a page elsewhere, refused anyway, may not lock the teacher out)."""
        from websockets.datastructures import MultipleValuesError

        tokens = parse_qs(query).get("token", [])
        pin = tokens[0] if len(tokens) == 1 else ""
        if pin and hmac.compare_digest(pin.encode(), self.access.token.encode()):
            return False
        try:
            origin, host = request.headers.get("Origin"), request.headers.get("Host")
        except MultipleValuesError:
            return False
        return self.access.refusal(origin, host, self.access.token, 0) is None  # None: its origin is allowed

    def _failed(self) -> None:
        now = time.monotonic()
        with self._guard:
            self._failures.append(now)
            while self._failures and self._failures[0] <= now - self.WINDOW_S:
                self._failures.popleft()
            locked = len(self._failures) >= self.LOCK_AFTER
            if locked:
                self._failures.clear()
                self._locked_until = now + self.LOCK_S
        if locked:  # one line per lockout, not one per refused guess
            log.warning("teacher's page: %d wrong PINs within %d s; every connection is refused for %d s",
                        self.LOCK_AFTER, self.WINDOW_S, self.LOCK_S)

    def _locked_for(self) -> float:
        with self._guard:
            return max(0.0, self._locked_until - time.monotonic())

    def _full(self) -> bool:
        with self._lock:
            return self._count() >= self.access.max_clients

    def _page(self, connection, path: str):
        response = super()._page(connection, path)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors for older browsers
        return response

    def _warn_open(self, host: str, made: bool, settings: str) -> None:
        where = lan_address() if host in ("", "0.0.0.0", "::") else host
        where = f"[{where}]" if ":" in where else where
        log.warning("the teacher's page is open to the network on %s:%d: open http://%s:%d/ on the tablet and enter "
                    "the teacher.pin", host, self.port, where, self.port)


def start_teacher(host: str, port: int, *, pin: str, apply: Callable[[dict], dict], status: Callable[[], dict],
                  origins: tuple[str, ...] = (), max_clients: int = 4) -> TeacherServer:
    """The teacher's server, to be subscribed to the event bus; open http://HOST:PORT/ on the tablet."""
    return TeacherServer(host, port, pin=pin, apply=apply, status=status, origins=origins, max_clients=max_clients)

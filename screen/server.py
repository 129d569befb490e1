"""Serves the read-along page and its live state on one port (websockets: HTTP for the page, /ws for the state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from safety.privacy import CHILD_WORDS
from screen.state import ScreenState
from wsserver import WebSocketSink

STATIC = Path(__file__).with_name("static")
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def pages() -> dict[str, tuple[str, bytes]]:
    """Every asset the page needs, served by the app itself: it works with no internet."""
    found = {f"/{p.name}": (TYPES[p.suffix], p.read_bytes()) for p in STATIC.iterdir() if p.suffix in TYPES}
    found["/"] = found["/index.html"]
    return found


def child_words_redacted(redact: Callable[[str], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A record filter: what the child said with names, addresses, ... replaced; the story's words untouched.

    The story's sentences are left as they are so the `word` events still match the sentence shown.
    """

    def scrub(record: dict[str, Any]) -> dict[str, Any]:
        name = record.get("event", "")
        field = CHILD_WORDS.get(name) or ("masked" if name == "blocked" and record.get("stage") == "input" else None)
        if field and isinstance(record.get(field), str):
            return {**record, field: redact(record[field])}
        return record

    return scrub


def start_screen(host: str, port: int, language: str, *, redact: Optional[Callable[[str], str]] = None,
                 token: Optional[str] = None, origins: tuple[str, ...] = (), max_clients: int = 8) -> WebSocketSink:
    """The screen server, to be subscribed to the event bus; open http://HOST:PORT/ in a kiosk browser."""
    state = ScreenState(language)
    return WebSocketSink(host, port, pages=pages(), hello=state.message, transform=state.update,
                         token=token, origins=origins, max_clients=max_clients,
                         scrub=child_words_redacted(redact) if redact else None, settings="screen.")

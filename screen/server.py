"""Serves the read-along page and its live state on one port (websockets: HTTP for the page, /ws for the state)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

from events import Event
from safety.privacy import child_words_field
from screen.state import ScreenState
from wsserver import WebSocketSink

STATIC = Path(__file__).with_name("static")
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def pages() -> dict[str, tuple[str, bytes]]:
    """Every asset the page needs, served by the app itself: it works with no internet."""
    found = {f"/{p.name}": (TYPES[p.suffix], p.read_bytes()) for p in STATIC.iterdir() if p.suffix in TYPES}
    found["/"] = found["/index.html"]
    return found


def child_words_redacted(redact: Callable[[str], str]) -> Callable[[Event], Event]:
    """An event filter: what the child said with names, addresses, ... replaced; the story's words untouched.

    The story's sentences are left as they are so the `word` events still match the sentence shown.
    """

    def scrub(event: Event) -> Event:
        field = child_words_field(event)
        if field and isinstance(getattr(event, field), str):
            return dataclasses.replace(event, **{field: redact(getattr(event, field))})
        return event

    return scrub


def start_screen(host: str, port: int, language: str, *, redact: Optional[Callable[[str], str]] = None,
                 token: Optional[str] = None, origins: tuple[str, ...] = (), max_clients: int = 8) -> WebSocketSink:
    """The screen server, to be subscribed to the event bus; open http://HOST:PORT/ in a kiosk browser."""
    state = ScreenState(language)
    return WebSocketSink(host, port, pages=pages(), hello=state.message, transform=state.update,
                         token=token, origins=origins, max_clients=max_clients,
                         scrub=child_words_redacted(redact) if redact else None, settings="screen.")

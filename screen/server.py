"""Serves the read-along page and its live state on one local port (websockets: HTTP for the page, /ws for the state)."""

from __future__ import annotations

from pathlib import Path

from events import WebSocketSink
from screen.state import ScreenState

STATIC = Path(__file__).with_name("static")
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def pages() -> dict[str, tuple[str, bytes]]:
    """Every asset the page needs, served by the app itself: it works with no internet."""
    found = {f"/{p.name}": (TYPES[p.suffix], p.read_bytes()) for p in STATIC.iterdir() if p.suffix in TYPES}
    found["/"] = found["/index.html"]
    return found


def start_screen(host: str, port: int, language: str) -> WebSocketSink:
    """The screen server, to be subscribed to the event bus; open http://HOST:PORT/ in a kiosk browser."""
    state = ScreenState(language)
    return WebSocketSink(host, port, pages=pages(), hello=state.message, transform=state.update, setting="screen.port")

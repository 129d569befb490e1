"""The event bus and its sinks: JSON lines and a local WebSocket."""

import json
import time

import pytest
from websockets.sync.client import connect

from errors import ConfigError
from events import EventBus, JsonLinesSink, SentenceReady, TurnStart
from wsserver import WebSocketSink


def test_json_lines_have_event_time_and_fields(tmp_path):
    bus, path = EventBus(), tmp_path / "ev.jsonl"
    sink = JsonLinesSink(str(path))
    bus.subscribe(sink)
    bus.emit(SentenceReady(turn=1, index=0, text="Il était une fois."))
    sink.close()
    record = json.loads(path.read_text())
    assert record["event"] == "sentence" and record["text"] == "Il était une fois." and record["t"] >= 0


def test_websocket_clients_follow_the_events():
    bus = EventBus()
    sink = WebSocketSink("127.0.0.1", 0)
    bus.subscribe(sink)
    try:
        with connect(f"ws://127.0.0.1:{sink.port}") as a, connect(f"ws://127.0.0.1:{sink.port}") as b:
            for _ in range(250):  # the server registers each client in its own thread
                if len(sink._clients) == 2:
                    break
                time.sleep(0.02)
            bus.emit(TurnStart(turn=1, text="a dragon", mode="new_story"))
            bus.emit(SentenceReady(turn=1, index=0, text="Once upon a time."))
            for client in (a, b):
                got = [json.loads(client.recv(timeout=5)) for _ in range(2)]
                assert [g["event"] for g in got] == ["turn_start", "sentence"]
                assert got[1]["text"] == "Once upon a time."
    finally:
        sink.close()


def test_websocket_is_local_by_default_and_a_busy_port_is_one_line():
    from settings import EventSettings

    assert EventSettings().websocket is False and EventSettings().websocket_host == "127.0.0.1"
    first = WebSocketSink("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="events.websocket_port"):
            WebSocketSink("127.0.0.1", first.port)
    finally:
        first.close()

"""The event bus and its sinks: JSON lines and a local WebSocket."""

import dataclasses
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


def test_subscribers_get_the_typed_event_and_the_file_its_json(tmp_path):
    clock = iter([10.0, 11.23456, 12.5]).__next__  # the bus's start, then one reading per event
    bus, path, got = EventBus(clock=clock), tmp_path / "ev.jsonl", []
    sink = JsonLinesSink(str(path))
    bus.subscribe(got.append)
    bus.subscribe(sink)
    sent = bus.emit(SentenceReady(turn=1, index=0, text="Il était une fois."))
    bus.emit(TurnStart(turn=2, text="a dragon", mode="new_story"))
    sink.close()
    assert got[0] is sent and isinstance(sent, SentenceReady) and sent.t == 1.2346
    assert got[0] == SentenceReady(turn=1, index=0, text="Il était une fois.")  # the time is not compared
    # The file's lines are what they always were: event, time, then the fields in their order.
    assert path.read_text(encoding="utf-8").splitlines() == [
        '{"event": "sentence", "t": 1.2346, "turn": 1, "index": 0, "text": "Il était une fois."}',
        '{"event": "turn_start", "t": 2.5, "turn": 2, "text": "a dragon", "mode": "new_story", "mode_by": "", "mode_p": null}']
    with pytest.raises(dataclasses.FrozenInstanceError):
        sent.text = "changed"  # one event reaches every subscriber: none may change it for the others


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

"""The app's network surfaces (events WebSocket, read-along screen): who may connect, and that no client can hurt the app.

Real sockets throughout, on 127.0.0.1 (and on this machine's network address where it has one).
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import socket
import threading
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from events import BlockedEvent, EventBus, Heard, JsonLinesSink, Listening, SentenceReady, SpeakStart, TurnStart
from safety.guard import SafetyGuard
from safety.privacy import NOT_KEPT, scrubber
from screen.server import start_screen
from tests.helpers import refused, wait_for
from wsserver import WebSocketSink, access_for, is_loopback

pytestmark = pytest.mark.integration  # real weights, servers or a browser: not in pytest -m unit

TOKEN = "a-test-token-0123456789"
EVIL = "http://evil.example"
CHILD = "my name is Anna Smith and I live at 12 Baker Street"


@pytest.fixture
def events():
    sink = WebSocketSink("127.0.0.1", 0)
    yield sink
    sink.close()


@pytest.fixture
def screen():
    sink = start_screen("127.0.0.1", 0, "en")
    yield sink
    sink.close()


def test_a_browser_page_from_elsewhere_is_refused_and_the_screens_own_page_is_not(events, screen):
    ev, sc = f"ws://127.0.0.1:{events.port}/", f"ws://127.0.0.1:{screen.port}/ws"
    assert refused(ev, origin=EVIL) == 403
    assert refused(sc, origin=EVIL) == 403
    assert refused(ev, origin=f"http://127.0.0.1:{screen.port}") == 403  # the events socket allows no page at all
    events(Listening(t=0))
    with connect(ev) as robot:  # no Origin header: a program, not a web page
        wait_for(lambda: len(events._clients) == 1)
        events(Listening(t=1))
        assert json.loads(robot.recv(timeout=5))["t"] == 1
    for own in (f"http://127.0.0.1:{screen.port}", f"http://localhost:{screen.port}", f"http://[::1]:{screen.port}"):
        with connect(sc, origin=own) as page:
            assert json.loads(page.recv(timeout=5))["type"] == "state"  # the greeting: the whole state
    assert refused(sc, origin=f"http://127.0.0.1:{screen.port + 1}") == 403  # another port is another origin


def test_configured_origins_are_let_in():
    sink = WebSocketSink("127.0.0.1", 0, origins=("http://captions.local:8080",))
    try:
        with connect(f"ws://127.0.0.1:{sink.port}/", origin="http://captions.local:8080"):
            pass
        assert refused(f"ws://127.0.0.1:{sink.port}/", origin="http://captions.local:8081") == 403
    finally:
        sink.close()


def test_the_policy_needs_a_token_off_loopback_and_makes_one():
    for host in ("127.0.0.1", "127.3.4.5", "::1", "localhost"):
        assert is_loopback(host) and access_for(host, 1, page=True, token=None)[0].token is None
    for host in ("0.0.0.0", "", "::", "192.168.1.5", "kiosk.local"):
        access, made = access_for(host, 1, page=False, token=None)
        assert not is_loopback(host) and made and len(access.token) >= 16
        assert access.refusal(None, "x", None, 0) == (403, "Forbidden: a valid ?token= is required\n")
        assert access.refusal(None, "x", access.token, 0) is None
    access, made = access_for("0.0.0.0", 1, page=False, token=TOKEN)
    assert access.token == TOKEN and not made  # a configured token is used, never replaced
    # A loopback bind with a token configured asks for it too.
    assert access_for("127.0.0.1", 1, page=False, token=TOKEN)[0].refusal(None, "x", None, 0)[0] == 403


def test_a_network_bind_without_a_token_makes_one_logs_its_url_once_and_refuses_clients_without_it(caplog):
    """Bound to every interface (0.0.0.0, what a school sets to reach a tablet); the clients connect
    over loopback, so no test traffic leaves the machine, and the network bind's rules still apply."""
    caplog.set_level(logging.WARNING, logger="storyteller.wsserver")
    events = WebSocketSink("0.0.0.0", 0)
    screen = start_screen("0.0.0.0", 0, "en")
    local = "127.0.0.1"
    try:
        lines = [r.getMessage() for r in caplog.records if r.name == "storyteller.wsserver"]
        assert len(lines) == 2 and all("open to the network" in line for line in lines), lines
        url = re.search(r"(ws://\S+\?token=\S+)", lines[0]).group(1)
        assert f":{events.port}/" in url
        base = f"ws://{local}:{events.port}/"
        assert refused(base) == 403
        assert refused(base + "?token=wrong") == 403
        with connect(re.sub(r"ws://[^/]+/", base, url)):  # the logged URL's token works
            pass
        page = re.search(r"(http://\S+)\?token=(\S+)", lines[1])
        own, token = f"http://{local}:{screen.port}", page.group(2)
        assert urllib.request.urlopen(own + "/", timeout=5).status == 200  # the page itself holds nothing secret
        assert refused(f"ws://{local}:{screen.port}/ws", origin=own) == 403
        assert refused(f"ws://{local}:{screen.port}/ws?token={token}", origin=EVIL) == 403
        with connect(f"ws://{local}:{screen.port}/ws?token={token}", origin=own) as tablet:
            assert json.loads(tablet.recv(timeout=5))["type"] == "state"
    finally:
        events.close()
        screen.close()


def test_clients_over_the_limit_are_refused_with_503():
    sink = WebSocketSink("127.0.0.1", 0, max_clients=2)
    url = f"ws://127.0.0.1:{sink.port}/"
    try:
        with connect(url), connect(url) as second:
            assert refused(url) == 503
            second.close()
            assert wait_for(lambda: len([c for c in sink._clients if c.connection.state.name == "OPEN"]) == 1)
            with connect(url):  # the freed place can be taken again
                pass
    finally:
        sink.close()


def stuck_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while not response.endswith(b"\r\n\r\n"):  # byte by byte: read nothing after the response
        response += s.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return s


def test_a_client_that_stops_reading_is_dropped_and_close_does_not_wait_for_it(events):
    big = SentenceReady(turn=1, index=0, text="x" * 128_000)
    # A send blocked longer than the send timeout: dropped (the queue never filled).
    with stuck_client(events.port):
        assert wait_for(lambda: len(events._clients) == 1)
        start = time.monotonic()
        for _ in range(150):  # ~19 MB: more than the socket buffers hold, fewer than the queue's places
            events(big)
        assert wait_for(lambda: not events._clients, timeout=5)
        assert time.monotonic() - start < events.SEND_TIMEOUT_S + 1.5
    # Its queue filled while a send was blocked: dropped at once.
    with stuck_client(events.port):
        assert wait_for(lambda: len(events._clients) == 1)
        start = time.monotonic()
        for _ in range(events.QUEUE_SIZE + 200):
            events(big)
        assert wait_for(lambda: not events._clients, timeout=5)
        assert time.monotonic() - start < events.SEND_TIMEOUT_S
    # close() with a client stuck mid-send, and another that never finished its handshake, returns
    # within a second; the app goes on emitting without harm.
    with stuck_client(events.port), socket.create_connection(("127.0.0.1", events.port)):
        assert wait_for(lambda: len(events._clients) == 1)
        for _ in range(100):
            events(big)
        start = time.monotonic()
        events.close()
        assert time.monotonic() - start < 1.5
        events(big)


def test_connect_close_cycles_leave_no_thread_behind(events):
    url = f"ws://127.0.0.1:{events.port}/"
    with connect(url):  # the first connection starts what stays (nothing should)
        pass
    time.sleep(1)
    baseline = threading.active_count()
    for _ in range(2000):  # 10,000 measured by hand (README): the same, at five times the cost
        with connect(url):
            pass
    assert wait_for(lambda: threading.active_count() <= baseline, timeout=5), (threading.active_count(), baseline)
    assert not events._clients


def test_the_events_socket_keeps_of_the_childs_words_what_the_file_keeps(tmp_path):
    guard = SafetyGuard("Early Elementary", "en")
    for keep in (False, True):
        bus, path = EventBus(), tmp_path / f"events-{keep}.jsonl"
        sink = WebSocketSink("127.0.0.1", 0, scrub=scrubber(keep, guard.redact))
        file = JsonLinesSink(str(path), scrubber(keep, guard.redact))
        bus.subscribe(sink)
        bus.subscribe(file)
        try:
            with connect(f"ws://127.0.0.1:{sink.port}/") as robot:
                assert wait_for(lambda: len(sink._clients) == 1)
                bus.emit(Heard(text=CHILD, language="en", duration=2.0))
                bus.emit(BlockedEvent(turn=1, stage="input", category="personal", rule="address", layer="personal", masked=CHILD))
                bus.emit(TurnStart(turn=1, text=CHILD, mode="new_story"))
                bus.emit(SentenceReady(turn=1, index=0, text="Once upon a time, Anna Smith found a fox."))
                got = [json.loads(robot.recv(timeout=5)) for _ in range(4)]
        finally:
            sink.close()
            file.close()
        assert got == [json.loads(line) for line in path.read_text().splitlines()]
        said = [got[0]["text"], got[1]["masked"], got[2]["text"]]
        assert said == ([NOT_KEPT] * 3 if not keep else ["my name is [full_name] and [address]"] * 3)
        assert "Anna Smith" not in json.dumps(got[:3])  # (the story's sentence is the storyteller's, redacted by rule)


def test_the_screen_shows_what_the_child_said_redacted():
    guard = SafetyGuard("Early Elementary", "en")
    sink = start_screen("127.0.0.1", 0, "en", redact=guard.redact)
    try:
        sink(Heard(text=CHILD, language="en", duration=2.0, t=0))
        sink(TurnStart(turn=1, text=CHILD, mode="new_story", t=0))
        sink(SpeakStart(text="Once upon a time, Anna Smith found a fox.", t=1))
        with connect(f"ws://127.0.0.1:{sink.port}/ws") as page:
            state = json.loads(page.recv(timeout=5))
        assert state["heard"] == "my name is [full_name] and [address]"
        assert state["sentence"] == "Once upon a time, Anna Smith found a fox."  # the story is left whole for word timing
    finally:
        sink.close()


def raw_status(port: int, request: bytes) -> bytes:
    """The status line the server answers a raw HTTP request with."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        return s.recv(200).split(b"\r\n")[0]


def test_the_screen_still_refuses_paths_outside_its_pages_and_oversized_requests(screen):
    for path in (b"/../config.yaml", b"/%2e%2e/config.yaml", b"/static/../../settings.py", b"//etc/passwd"):
        assert raw_status(screen.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n") == b"HTTP/1.1 404 Not Found"
    assert raw_status(screen.port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").split()[1] == b"414"
    assert raw_status(screen.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n").split()[1] == b"431"


EVIL_PAGE = """<!doctype html><meta charset="utf-8"><pre id="log"></pre><script>
const log = (s) => { document.getElementById("log").textContent += s + "\\n"; };
for (const [name, url] of [["events", "EVENTS_URL"], ["screen", "SCREEN_URL"]]) {
  const ws = new WebSocket(url);
  ws.onopen = () => log(name + " open");
  ws.onmessage = (m) => log(name + " message " + m.data);
  ws.onclose = () => log(name + " closed");
}
</script>"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


def test_a_page_from_another_origin_cannot_read_either_socket_in_a_real_browser(tmp_path):
    """Headless Chromium: a page served from another port opens both sockets (even with the screen's token) and
    gets nothing; the read-along page, opened with its token, shows the state."""
    from tests.test_screen import browser

    driver = browser()  # skips when Chromium is not installed
    events = WebSocketSink("127.0.0.1", 0)
    screen = start_screen("127.0.0.1", 0, "en", token=TOKEN)
    (tmp_path / "evil.html").write_text(EVIL_PAGE.replace("EVENTS_URL", f"ws://127.0.0.1:{events.port}/")
                                        .replace("SCREEN_URL", f"ws://127.0.0.1:{screen.port}/ws?token={TOKEN}"))
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(tmp_path)))
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        for event in (Heard(text="a fox", language="en", duration=1.0, t=0), SpeakStart(text="Once upon a time.", t=1)):
            events(event)
            screen(event)
        driver.get(f"http://127.0.0.1:{other.server_address[1]}/evil.html")
        log = lambda: driver.find_element("id", "log").text  # noqa: E731
        assert wait_for(lambda: "events closed" in log() and "screen closed" in log(), timeout=15), log()
        events(Listening(t=2))  # nothing is sent to it later either
        screen(Listening(t=2))
        time.sleep(0.5)
        assert "open" not in log() and "message" not in log(), log()
        # The read-along page: refused without its token, working with it (the page passes it on to /ws).
        sentence = lambda: driver.execute_script("return document.getElementById('sentence').dataset.text || ''")  # noqa: E731
        driver.get(f"http://127.0.0.1:{screen.port}/")
        time.sleep(1.5)
        assert sentence() == "" and driver.execute_script("return !document.getElementById('offline').hidden")
        driver.get(f"http://127.0.0.1:{screen.port}/?token={TOKEN}")
        assert wait_for(lambda: sentence() == "Once upon a time.", timeout=10), sentence()
    finally:
        driver.quit()
        other.shutdown()
        events.close()
        screen.close()

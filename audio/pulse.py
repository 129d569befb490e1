"""PulseAudio for echo cancellation: the speaker's monitor as the far end, or the server's own canceller.

- `SpeakerMonitor` (`echo_cancel: webrtc`, `echo_reference: monitor`): every PulseAudio sink has
  a monitor source carrying exactly what it played. Captured like the microphone (512-sample
  frames stamped with PortAudio's ADC time) it is one unbroken stream beside the microphone's,
  so the app's canceller (AEC3) sees the echo at a fixed lag: 40-75 dB out from the first
  100-200 ms of every sentence (BENCHMARKS.md 9).
- `PulseEchoCancel` (`echo_cancel: system`): module-echo-cancel makes a sink and a source over
  the real ones, and the app points its own streams at the pair through PULSE_SINK /
  PULSE_SOURCE (the ALSA "pulse" device PortAudio opens reads them for every stream it connects),
  so nothing else on the machine is moved. Its canceller (webrtc-audio-processing 0.3, the older
  AEC) was measured weaker here: 8-22 dB in the first 0.3-0.5 s of each sentence after a
  silence, then anywhere from 15 to 90 dB.
"""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Any, Callable, Optional

from audio.echo import EchoError, PlayedAudio
from audio.listen import FRAME_SAMPLES, SAMPLE_RATE, _captured

log = logging.getLogger(__name__)

DRIVER = "module-echo-cancel.c"
SOURCE, SINK = "storyteller_echo_source", "storyteller_echo_sink"
ENV = ("PULSE_SOURCE", "PULSE_SINK")
# The analog gain control moves the master microphone's volume itself (it left a kiosk's microphone
# at 33 % after one run, for every program after it); the digital one pumps the echo's residue
# up between sentences. Whisper and the VAD want the level as it is.
AEC_ARGS = "analog_gain_control=0 digital_gain_control=0 high_pass_filter=1"

Run = Callable[[list[str]], str]


def _pactl(args: list[str]) -> str:
    try:
        done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError as err:
        raise EchoError("no PulseAudio: pactl is not installed (apt install pulseaudio-utils)") from err
    except (OSError, subprocess.TimeoutExpired) as err:
        raise EchoError(f"pactl {args[0]} failed: {err}") from err
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise EchoError(f"pactl {' '.join(args[:2])}: {reason[-1] if reason else f'exit {done.returncode}'}")
    return done.stdout


def _put_env(environ: dict, key: str, value: Optional[str]) -> None:
    """Set environ[key], or remove it for None (putting back what was there before)."""
    if value is None:
        environ.pop(key, None)
    else:
        environ[key] = value


def _listing(run: Run, kind: str) -> list[tuple[str, str]]:
    """(name, driver) of each sink or source, from `pactl list short`."""
    rows = [line.split("\t") for line in run(["list", "short", kind]).splitlines()]
    return [(row[1], row[2]) for row in rows if len(row) > 2]


class PulseEchoCancel:
    """module-echo-cancel for this session: found where one runs, loaded over the default devices where not.

    open() points this process's PulseAudio streams at the pair and returns self; close() puts
    the environment back and unloads what open() loaded (a pair found running is left as it was).
    """

    def __init__(self, noise_suppression: bool = False, run: Run = _pactl, environ: Optional[dict] = None):
        self.noise_suppression = noise_suppression
        self._run = run
        self._environ = os.environ if environ is None else environ
        self._saved: dict[str, Optional[str]] = {}
        self.module: Optional[str] = None
        self.source = self.sink = ""

    def open(self) -> "PulseEchoCancel":
        """Find or load the canceller and route this process's streams through it; EchoError says why not."""
        found = self._running()
        if found:
            self.source, self.sink = found
            log.info("echo cancellation: the sound server's (%s, %s), already running", *found)
        else:
            self._load()
        for key, value in zip(ENV, (self.source, self.sink)):
            self._saved[key] = self._environ.get(key)
            self._environ[key] = value
        return self

    def _running(self) -> Optional[tuple[str, str]]:
        """The source and sink of a module-echo-cancel already loaded (ours left by a crash, or the system's)."""
        sources = [name for name, driver in _listing(self._run, "sources") if driver == DRIVER]
        sinks = [name for name, driver in _listing(self._run, "sinks") if driver == DRIVER]
        if not sources or not sinks:
            return None
        pick = (lambda names, ours: ours if ours in names else names[0])
        return pick(sources, SOURCE), pick(sinks, SINK)

    def _load(self) -> None:
        source = self._run(["get-default-source"]).strip()
        sink = self._run(["get-default-sink"]).strip()
        if not source or not sink:
            raise EchoError("echo_cancel: system: the sound server has no default microphone or speaker")
        aec = f"{AEC_ARGS} noise_suppression={int(self.noise_suppression)}"
        self.module = self._run(["load-module", "module-echo-cancel", f"source_master={source}",
                                 f"sink_master={sink}", f"source_name={SOURCE}", f"sink_name={SINK}",
                                 "aec_method=webrtc", f'aec_args="{aec}"']).strip()
        self.source, self.sink = SOURCE, SINK
        log.info("echo cancellation: PulseAudio's module-echo-cancel over %s and %s (noise suppression %s)",
                 source, sink, "on" if self.noise_suppression else "off")

    def close(self) -> None:
        """Put PULSE_SOURCE / PULSE_SINK back and unload the module this object loaded."""
        for key, value in self._saved.items():
            _put_env(self._environ, key, value)
        self._saved.clear()
        if self.module is not None:
            try:
                self._run(["unload-module", self.module])
            except EchoError as err:  # the server went away with it
                log.debug("echo cancellation: %s", err)
            self.module = None

    def __enter__(self) -> "PulseEchoCancel":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


def find_monitor(run: Run = _pactl, environ: Optional[dict] = None) -> str:
    """The monitor source of the sink this process plays to (PULSE_SINK, else the default); EchoError where none."""
    environ = os.environ if environ is None else environ
    sink = environ.get("PULSE_SINK") or run(["get-default-sink"]).strip()
    sources = {name for name, _ in _listing(run, "sources")}
    if f"{sink}.monitor" not in sources:
        raise EchoError(f"the sound server has no monitor of the speaker {sink!r}")
    return f"{sink}.monitor"


class SpeakerMonitor:
    """A capture stream on the speaker's monitor whose frames go, stamped, into the canceller's PlayedAudio."""

    def __init__(self, source: str, reference: PlayedAudio):
        self.source, self.reference = source, reference
        self.stream: Any = None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: one short copy
        # Stamped at its first sample, as the speaker stamps the blocks it hands the device.
        at = _captured(time_info, frames) - frames / SAMPLE_RATE
        self.reference.played(indata[:, 0].copy(), SAMPLE_RATE, at=at)

    def open(self) -> None:
        """Start recording the monitor; EchoError when it cannot be opened."""
        import sounddevice as sd

        # The ALSA "pulse" device reads PULSE_SOURCE when it connects a stream: set only for this one
        # (the microphone is opened before or after it on the same thread, never at the same time).
        saved = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = self.source
        try:
            self.stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32",
                                         blocksize=FRAME_SAMPLES, callback=self._callback)
            self.stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types
            self.stream = None
            raise EchoError(f"cannot record the speaker's monitor {self.source} ({err})") from err
        finally:
            _put_env(os.environ, "PULSE_SOURCE", saved)

    def close(self) -> None:
        """Stop recording (safe to call twice)."""
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception as err:  # noqa: BLE001 - a device already gone
                log.debug("speaker monitor: %s", err)

"""A virtual room for echo tests: the speaker (kiosk_out) leaks into the microphone (kiosk_mic) through a PulseAudio loopback."""

from __future__ import annotations

import subprocess
import tempfile
import time

import numpy as np
import soundfile as sf

RATE = 16000


class EchoRoomError(RuntimeError):
    """The echo room could not be built or removed."""


def _pactl(*args: str) -> str:
    try:
        return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise EchoRoomError(f"pactl {' '.join(args)} failed: {getattr(exc, 'stderr', exc)}") from exc


def play(samples: np.ndarray, sink: str, rate: int = RATE) -> subprocess.Popen:
    """Start playing samples into a PulseAudio sink in the background; the caller waits or terminates."""
    tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False)
    sf.write(tmp.name, samples.astype(np.float32), rate, subtype="PCM_16")
    return subprocess.Popen(["paplay", f"--device={sink}", tmp.name])


class EchoRoom:
    """Loads module-loopback kiosk_out.monitor -> kiosk_mic_feed (delay, volume) and unloads it on exit."""

    def __init__(self, latency_ms: int = 60, volume: float = 0.7, source: str = "kiosk_out.monitor",
                 sink: str = "kiosk_mic_feed"):
        self.latency_ms, self.volume, self.source, self.sink = latency_ms, volume, source, sink
        self.module: int | None = None
        self._babble: subprocess.Popen | None = None

    def __enter__(self) -> "EchoRoom":
        self.module = int(_pactl("load-module", "module-loopback", f"source={self.source}", f"sink={self.sink}",
                                 f"latency_msec={self.latency_ms}", "source_dont_move=1", "sink_dont_move=1").strip())
        try:
            self._set_volume()
        except EchoRoomError:
            self.__exit__(None, None, None)
            raise
        return self

    def _set_volume(self) -> None:
        # The loopback's sink input carries the room's attenuation; find it by its owner module.
        for _ in range(50):
            # The short listing has no owner column; the long one names "Owner Module: N" per sink input.
            for block in _pactl("list", "sink-inputs").split("Sink Input #")[1:]:
                if f"Owner Module: {self.module}\n" in block:
                    _pactl("set-sink-input-volume", block.split()[0], f"{round(self.volume * 100)}%")
                    return
            time.sleep(0.05)
        raise EchoRoomError(f"no sink input for loopback module {self.module}")

    def babble(self, samples: np.ndarray, rate: int = RATE) -> None:
        """Play classroom babble (e.g. speech_clips.babble(seconds)) into the room until stop_babble()."""
        self.stop_babble()
        self._babble = play(samples, self.sink, rate)

    def stop_babble(self) -> None:
        """Stop the babble if it is still playing."""
        if self._babble is not None:
            self._babble.terminate()
            self._babble.wait(5)
            self._babble = None

    def __exit__(self, *exc) -> None:
        self.stop_babble()
        if self.module is not None:
            subprocess.run(["pactl", "unload-module", str(self.module)], capture_output=True)
            self.module = None

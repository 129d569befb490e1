"""Audio outputs: a PortAudio device (sounddevice) and a wav recorder of everything played."""

from __future__ import annotations

import logging
from typing import Optional, Union

import numpy as np

from errors import SpeechError

log = logging.getLogger(__name__)

DeviceRef = Optional[Union[int, str]]


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Band-limited resampling of a whole clip (FFT), float32 out."""
    if src_rate == dst_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    n_out = int(round(len(samples) * dst_rate / src_rate))
    spectrum = np.fft.rfft(samples)
    keep = n_out // 2 + 1
    spectrum = spectrum[:keep] if len(spectrum) >= keep else np.pad(spectrum, (0, keep - len(spectrum)))
    return (np.fft.irfft(spectrum, n_out) * (n_out / len(samples))).astype(np.float32)


def parse_device(ref: DeviceRef) -> DeviceRef:
    """Config gives a name or an index; a digit string means an index."""
    if isinstance(ref, str) and ref.strip().isdigit():
        return int(ref)
    return ref


def list_devices() -> str:
    """PortAudio's device table, as sounddevice prints it."""
    try:
        import sounddevice as sd

        return str(sd.query_devices())
    except (OSError, ImportError) as err:
        raise SpeechError(f"cannot list audio devices: {err} (is libportaudio2 installed?)") from err


class DeviceOutput:
    """A mono float32 PortAudio output stream written in small blocks by one thread (the speaker's)."""

    def __init__(self, device: DeviceRef = None):
        try:
            import sounddevice as sd
        except (OSError, ImportError) as err:
            raise SpeechError(f"no audio output: PortAudio is missing ({err}); install libportaudio2") from err
        self._sd = sd
        self.device = parse_device(device)
        self.stream = None
        self.sample_rate = 0
        try:
            sd.check_output_settings(device=self.device, channels=1, dtype="float32")
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types
            raise SpeechError(f"no usable audio output device ({err}); see --list-devices") from err

    def _open(self, rate: int) -> None:
        if self.stream is not None:
            self.stream.close()
        try:
            self.stream = self._sd.OutputStream(
                samplerate=rate, channels=1, dtype="float32", device=self.device, latency="low"
            )
            self.stream.start()
        except Exception as err:  # noqa: BLE001
            self.stream = None
            raise SpeechError(f"cannot open the audio output at {rate} Hz: {err}") from err
        self.sample_rate = rate

    def write(self, block: np.ndarray, rate: int) -> None:
        """Play a block; returns once it is queued in PortAudio's small buffer (paced by the device)."""
        if self.stream is None or rate != self.sample_rate:
            self._open(rate)
        elif self.stream.stopped:
            self.stream.start()
        self.stream.write(np.ascontiguousarray(block, dtype=np.float32).reshape(-1, 1))

    @property
    def latency(self) -> float:
        """Seconds between a write and its sound (PortAudio's estimate)."""
        return float(self.stream.latency) if self.stream is not None else 0.0

    def pause(self) -> None:
        """Nothing more to play for now: let the buffer drain and stop (an idle running stream underruns)."""
        if self.stream is not None and self.stream.active:
            self.stream.stop()

    def discard(self) -> None:
        """Drop whatever is still buffered (after stop) and be ready to play again."""
        if self.stream is not None:
            self.stream.abort()
            self.stream.start()

    def close(self) -> None:
        """Release the device."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None


class WavRecorder:
    """Writes what the listener hears, silences included, to one mono 16-bit wav."""

    def __init__(self, path: str):
        self.path = path
        self.file = None
        self.sample_rate = 0

    def write(self, block: np.ndarray, rate: int) -> None:
        """Append samples (resampled to the file's rate if an engine uses another)."""
        import soundfile as sf

        if self.file is None:
            try:
                self.file = sf.SoundFile(self.path, "w", samplerate=rate, channels=1, subtype="PCM_16")
            except Exception as err:  # noqa: BLE001
                raise SpeechError(f"cannot write {self.path}: {err}") from err
            self.sample_rate = rate
        block = resample(block, rate, self.sample_rate)
        self.file.write(np.asarray(block, dtype=np.float32))

    def silence(self, seconds: float) -> None:
        """Append a pause."""
        if self.file is not None and seconds > 0:
            self.file.write(np.zeros(int(seconds * self.sample_rate), dtype=np.float32))

    def close(self) -> None:
        """Finish the file."""
        if self.file is not None:
            self.file.close()

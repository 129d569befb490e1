"""Audio outputs: a PortAudio device (sounddevice) and a wav recorder of everything played."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import re
import struct
import threading
import time
import weakref
from typing import Any, Callable, Optional, Union

import numpy as np

from errors import ConfigError, SinkError, SpeechError

log = logging.getLogger(__name__)

DeviceRef = Optional[Union[int, str]]

# close() waits this long for a write in progress (the speaker's thread) before leaving the
# stream or file open: closing under a writer crashes PortAudio and libc alike.
CLOSE_WAIT_S = 1.0


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


def short_reason(err: BaseException) -> str:
    """PortAudio's error in a few words: the host's own error ("Input/output error") when it gave one."""
    args = getattr(err, "args", ())
    host = args[2] if len(args) > 2 and isinstance(args[2], tuple) else ()
    if len(host) > 2 and host[2]:
        return str(host[2])
    text = str(args[0]) if args else str(err) or type(err).__name__
    return text.removeprefix("Error opening OutputStream: ")


class Alsa:
    """alsa-lib through ctypes: its error printer silenced, and a quiet test that a device can be opened.

    ALSA prints every failure ("ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred") straight
    to the process's stderr, past our log. The no-op handler set here sends them to the debug log
    instead. The handler is a ctypes callback owned by this object: release() (or this object being
    collected) puts ALSA's default back, so ALSA never calls a freed callback.
    """

    # void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
    HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)

    def __init__(self) -> None:
        self._lib: Any = None
        try:
            self._lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
        except OSError:
            return  # not Linux, or no ALSA: nothing prints, nothing to test
        self._lib.snd_strerror.restype = ctypes.c_char_p
        self._handler = self.HANDLER(self._on_error)
        self._lib.snd_lib_error_set_handler(self._handler)
        self._restore = weakref.finalize(self, self._lib.snd_lib_error_set_handler, None)

    @staticmethod
    def _on_error(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
        log.debug("alsa: %s: %s", (function or b"").decode(errors="replace"), (fmt or b"").decode(errors="replace"))

    def can_open(self, name: str) -> Optional[str]:
        """None when the ALSA device `name` opens for playback now (or cannot be tested), else why not."""
        if self._lib is None:
            return None
        pcm = ctypes.c_void_p()
        # Non-blocking: a device busy or a sound server gone answers at once.
        err = self._lib.snd_pcm_open(ctypes.byref(pcm), name.encode(), 0, 1)  # SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK
        if err < 0:
            return self._lib.snd_strerror(err).decode(errors="replace")
        self._lib.snd_pcm_close(pcm)
        return None

    def release(self) -> None:
        """ALSA prints its own errors again."""
        if self._lib is not None:
            self._restore()


class DeviceOutput:
    """A mono float32 PortAudio output stream written in small blocks by one thread (the speaker's).

    After a failed write the stream is closed; the next write opens a new one (the speaker decides
    when to try, see audio/speak.py). One lock is held by every use of the stream, so close() never
    closes it under a write; abort() alone does not take it: it is how another thread unblocks a
    write stuck in the device.
    """

    def __init__(self, device: DeviceRef = None):
        try:
            import sounddevice as sd
        except (OSError, ImportError) as err:
            raise SpeechError(f"no audio output: PortAudio is missing ({err}); install libportaudio2") from err
        self._sd = sd
        self.device = parse_device(device)
        self.stream: Any = None
        self.sample_rate = 0
        self._alsa = Alsa()
        self._lock = threading.Lock()  # held by every use of the stream but abort()
        self._aborting = threading.Lock()  # abort() and the stream's closing never overlap
        self._closed = False
        try:
            sd.check_output_settings(device=self.device, channels=1, dtype="float32")
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types
            self._alsa.release()
            raise SpeechError(f"no usable audio output device ({short_reason(err)}); see --list-devices") from err
        self._alsa_name = self._find_alsa_name()

    def _find_alsa_name(self) -> Optional[str]:
        """The ALSA name of the device for the quiet test; None where it has none (another host API) or is unknown."""
        try:
            info = self._sd.query_devices(self.device, kind="output") if self.device is None else self._sd.query_devices(self.device)
            if self._sd.query_hostapis(info["hostapi"])["name"] != "ALSA":
                return None
        except Exception:  # noqa: BLE001 - without a name the device is simply tried with PortAudio
            return None
        # PortAudio's ALSA devices are named after the ALSA device ("pulse", "default") or end in "(hw:0,0)".
        hw = re.search(r"\((hw:\d+,\d+)\)$", info["name"])
        return hw.group(1) if hw else info["name"]

    def available(self) -> Optional[str]:
        """None when the device looks ready to open (tested quietly through ALSA where it can be), else why not."""
        return self._alsa.can_open(self._alsa_name) if self._alsa_name else None

    def _open(self, rate: int) -> None:
        self._close_stream()
        try:
            stream = self._sd.OutputStream(samplerate=rate, channels=1, dtype="float32", device=self.device, latency="low")
            stream.start()
        except Exception as err:  # noqa: BLE001
            raise SpeechError(f"cannot open the audio output at {rate} Hz ({short_reason(err)}); see --list-devices") from err
        self.stream, self.sample_rate = stream, rate

    def write(self, block: np.ndarray, rate: int) -> None:
        """Play a block; returns once it is queued in PortAudio's small buffer (paced by the device).

        Raises SpeechError when the device fails; the broken stream is closed, and the next write opens another.
        """
        with self._lock:
            if self._closed:
                raise SpeechError("the audio output is closed")
            if self.stream is None or rate != self.sample_rate:
                self._open(rate)
            try:
                if self.stream.stopped:
                    self.stream.start()
                self.stream.write(np.ascontiguousarray(block, dtype=np.float32).reshape(-1, 1))
            except Exception as err:  # noqa: BLE001 - PortAudioError, or a stream aborted by close()
                self._close_stream()
                raise SpeechError(f"the audio output failed ({short_reason(err)})") from err
            finally:
                if self._closed:
                    self._close_stream()  # close() gave up waiting for this write: the writer closes it

    @property
    def latency(self) -> float:
        """Seconds between a write and its sound (PortAudio's estimate)."""
        stream = self.stream
        return float(stream.latency) if stream is not None else 0.0

    def pause(self) -> None:
        """Nothing more to play for now: let the buffer drain and stop (an idle running stream underruns)."""
        with self._lock:
            self._guarded(lambda s: s.active and s.stop())

    def discard(self) -> None:
        """Drop whatever is still buffered (after stop): silent at once; the next write starts the stream again.

        Starting it here would hold the stop for as long as the sound server takes to start a
        stream (over a second with PulseAudio, seen in the barge-in test).
        """
        with self._lock:
            self._guarded(lambda s: s.abort())

    def _guarded(self, action: Callable[[Any], Any]) -> None:
        if self.stream is None or self._closed:
            return
        try:
            action(self.stream)
        except Exception as err:  # noqa: BLE001
            self._close_stream()
            raise SpeechError(f"the audio output failed ({short_reason(err)})") from err

    def abort(self) -> None:
        """From another thread: stop the stream at once, so that a write blocked in the device returns."""
        with self._aborting:
            if self.stream is not None:
                self.stream.abort(ignore_errors=True)

    def _close_stream(self) -> None:
        with self._aborting:
            stream, self.stream = self.stream, None
        if stream is not None:
            stream.close(ignore_errors=True)

    def close(self, wait_s: float = CLOSE_WAIT_S) -> bool:
        """Release the device; False if a write still held it after wait_s (that write closes it when it returns)."""
        self._closed = True  # set first: a write stuck now closes the stream itself when it returns
        if not self._lock.acquire(timeout=wait_s):
            log.warning("audio output: a write is stuck in the device; it is closed when the write returns")
            return False
        try:
            self._close_stream()
        finally:
            self._lock.release()
        self._alsa.release()
        return True


WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")  # RIFF, WAVE, 16-byte PCM fmt chunk, data chunk
# The header is brought up to date after this much audio (a 44-byte write): a crash or a kill
# loses at most this much of the recording.
WAV_SYNC_S = 0.25
# After a failed write (a full disk), writing is tried again this often.
WAV_RETRY_S = 5.0


class WavFile:
    """A mono 16-bit PCM wav written with plain system calls; sync() rewrites the header to what is on disk."""

    def __init__(self, fd: int, path: str, rate: int, data_bytes: int = 0):
        self.fd, self.path, self.rate, self.data_bytes = fd, path, rate, data_bytes

    @classmethod
    def create(cls, path: str, rate: int) -> "WavFile":
        """A new file with an empty data chunk (raises OSError)."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)  # read too: copy_to()
        wav = cls(fd, path, rate)
        try:
            wav.sync()
            os.lseek(fd, WAV_HEADER.size, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
        return wav

    def append(self, pcm: bytes) -> None:
        """Write samples; data_bytes counts exactly what reached the file, even when a write fails part-way."""
        view = memoryview(pcm)
        while view:
            n = os.write(self.fd, view)
            self.data_bytes += n
            view = view[n:]

    def realign(self) -> None:
        """After a write that failed part-way: drop half a sample, so what follows stays in step."""
        if self.data_bytes % 2:
            self.data_bytes -= 1
            os.ftruncate(self.fd, WAV_HEADER.size + self.data_bytes)
            os.lseek(self.fd, 0, os.SEEK_END)

    def sync(self) -> None:
        """Make the header tell the samples written so far: the file is a valid wav from here on."""
        header = WAV_HEADER.pack(b"RIFF", 36 + self.data_bytes, b"WAVE", b"fmt ", 16, 1, 1, self.rate, self.rate * 2, 2, 16,
                                 b"data", self.data_bytes)
        os.pwrite(self.fd, header, 0)

    @property
    def deleted(self) -> bool:
        """The file was removed (alone, or with its folder): writes still succeed, but into no file anyone can open."""
        return os.fstat(self.fd).st_nlink == 0

    def copy_to(self, path: str) -> "WavFile":
        """The whole recording so far written to a new file at path, which takes over (raises OSError)."""
        self.sync()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            offset, total = 0, WAV_HEADER.size + self.data_bytes
            while offset < total:
                chunk = os.pread(self.fd, min(1 << 20, total - offset), offset)
                os.write(fd, chunk)
                offset += len(chunk)
        except OSError:
            os.close(fd)
            os.unlink(path)
            raise
        return WavFile(fd, path, self.rate, self.data_bytes)

    def close(self) -> None:
        """Final header, then the file is released (the descriptor is released even if the header fails)."""
        try:
            self.sync()
        finally:
            os.close(self.fd)


class WavRecorder:
    """Writes what the listener hears, silences included, to one mono 16-bit wav that is valid at every moment.

    The header is rewritten after every WAV_SYNC_S of audio, so a crash or a kill leaves a playable
    file. A fault never stops the session: write() raises SinkError once when the recording breaks
    (the speaker logs it and sends an `error` event), then keeps taking audio. A file deleted with
    its folder is still written (the system keeps a deleted file open), and when the folder is back
    the whole recording, from the first sentence, is saved there again (as NAME.1.wav if something
    else took the name meanwhile): nothing is lost. A failed write (a full disk) keeps what was
    written before as a valid wav, drops audio while writing fails, tries again every WAV_RETRY_S,
    and goes on in the same file. One lock is held by every use of the file, so close() never
    closes it under a write.
    """

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic):
        self.path = path
        self.clock = clock
        self.file: Optional[WavFile] = None
        self.sample_rate = 0
        self._lock = threading.Lock()
        self._closed = False
        self._since_sync = 0  # samples written since the header was last brought up to date
        self._failed_at: Optional[float] = None  # writing failed; tried again WAV_RETRY_S later
        self._dropped = 0  # samples lost while writing failed
        self._orphaned = False  # the file was deleted; it is saved again when its folder is back

    def check(self) -> None:
        """At start-up: raise ConfigError (exit code 2) when the path cannot be written."""
        existed = os.path.exists(self.path)
        try:
            with open(self.path, "ab"):
                pass
        except OSError as err:
            raise ConfigError(f"speech.output_wav: cannot write {self.path} ({err.strerror}); "
                              "pick a file in a folder that exists and can be written") from err
        if not existed:
            os.unlink(self.path)

    def write(self, block: np.ndarray, rate: int) -> None:
        """Append samples (resampled to the file's rate if an engine uses another); SinkError when the recording breaks."""
        with self._lock:
            if self._closed:
                return
            if self.sample_rate == 0:
                self.sample_rate = rate
            try:
                self._append(resample(block, rate, self.sample_rate))
            finally:
                if self._closed:
                    self._finish()  # close() gave up waiting for this write: the writer finishes the file

    def silence(self, seconds: float) -> None:
        """Append a pause."""
        with self._lock:
            if not self._closed and self.sample_rate and seconds > 0:
                self._append(np.zeros(int(seconds * self.sample_rate), dtype=np.float32))

    def _append(self, samples: np.ndarray) -> None:
        if self._failed_at is not None and self.clock() - self._failed_at < WAV_RETRY_S:
            self._dropped += len(samples)
            return
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        try:
            if self.file is None:
                self.file = WavFile.create(self.path, self.sample_rate)
            elif self._failed_at is not None:
                self.file.realign()
            self.file.append(pcm)
            self._since_sync += len(samples)
            if self._since_sync >= WAV_SYNC_S * self.sample_rate:
                self._sync()
        except OSError as err:
            self._write_failed(err, len(samples))
            return
        self._recovered()

    def _sync(self) -> None:
        self._since_sync = 0
        self.file.sync()
        if self.file.deleted:
            self._rehome()

    def _rehome(self) -> None:
        """The file was deleted: save the whole recording at its path again when the folder is back."""
        if not self._orphaned:
            self._orphaned = True
            raise SinkError(f"output wav: {self.path} was deleted; recording goes on and is saved there again "
                            "when its folder is back")
        if not os.path.isdir(os.path.dirname(os.path.abspath(self.path))):
            return
        try:
            moved = self.file.copy_to(self._free_path())
        except OSError as err:
            log.debug("output wav: cannot save %s yet: %s", self.path, err)
            return
        os.close(self.file.fd)
        self.file, self._orphaned = moved, False
        log.info("output wav: the folder is back; recording again to %s, nothing lost", moved.path)

    def _free_path(self) -> str:
        stem, ext = os.path.splitext(self.path)
        candidates = [self.path] + [f"{stem}.{n}{ext}" for n in range(1, 100)]
        return next((p for p in candidates if not os.path.exists(p)), candidates[-1])

    def _write_failed(self, err: OSError, samples: int) -> None:
        first = self._failed_at is None
        self._failed_at = self.clock()
        self._dropped += samples
        if self.file is not None:
            try:
                self.file.sync()  # what reached the disk before the fault stays a valid wav
            except OSError:
                pass
        if first:
            reason = err.strerror or str(err)
            hint = "free some space" if err.errno == errno.ENOSPC else "check the folder"
            raise SinkError(f"output wav: cannot write {self.path} ({reason}); the session goes on, {hint} "
                            f"and recording resumes (tried every {WAV_RETRY_S:g} s)") from err

    def _recovered(self) -> None:
        if self._failed_at is not None:
            self._failed_at = None
            log.info("output wav: writing %s again (%.1f s of speech missing from it)", self.path,
                        self._dropped / self.sample_rate)
            self._dropped = 0

    def close(self, wait_s: float = CLOSE_WAIT_S) -> bool:
        """Finish the file; False if a write still held it after wait_s (that write finishes it when it returns)."""
        self._closed = True  # set first: a write stuck now finishes the file itself when it returns
        if not self._lock.acquire(timeout=wait_s):
            log.warning("output wav: a write is stuck; %s is finished when it returns (valid as last synced meanwhile)", self.path)
            return False
        try:
            self._finish()
        finally:
            self._lock.release()
        return True

    def _finish(self) -> None:
        """The last header; a deleted file is saved once more if its folder is back."""
        if self.file is None:
            return
        file, self.file = self.file, None
        try:
            if file.deleted:
                self.file, self._orphaned = file, True  # _rehome() saves it without a second warning
                self._rehome()
                file, self.file = self.file, None
                if file.deleted:
                    log.warning("output wav: the folder of %s is still gone; this session's recording is lost", self.path)
            file.close()
        except OSError as err:
            log.warning("output wav: cannot finish %s (%s)", self.path, err.strerror or err)

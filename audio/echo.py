"""Echo cancellation: what the speaker played, aligned on the clock, taken out of what the microphone hears."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import numpy as np

from errors import ListenError

log = logging.getLogger(__name__)

RATE = 16000
CHUNK = 160  # WebRTC's audio processing works on 10 ms
# A block the speaker hands the device before, or within this after, where the last one ended is
# the same stream: the device plays them back to back, whatever the jitter of the writes.
JOIN_S = 0.1
# The microphone's frames are one stream too; their capture time (PortAudio's ADC time: within a few
# ms, where the moment of delivery varies by tens as a sound server delivers in bursts) this far
# from the sample count re-anchors the far end. With the speaker's monitor as the far end, both are
# unbroken streams on the device's clock: only a real break (a frame lost) may move it, never the
# stamps' jitter (up to 26 ms seen under load), each move costs the canceller the echo for a while.
REANCHOR_S = 0.025
MONITOR_REANCHOR_S = 0.2
# A block came this recently: the speaker is playing, and the next block is due within its 20 ms;
# a microphone frame waits at most WAIT_S for it.
PLAYING_S = 0.1
WAIT_S = 0.05
# Far-end samples above this level count as the speaker playing (for settling and for the check).
ACTIVE_DBFS = -50.0
# The far end quiet this long: the next sound is a new playback (an acknowledgement after the
# child's turn, a story after a wait), on which AEC3 has to find the echo again. Measured in the
# room: 2-16 dB out of the echo in a new playback's first 0.3 s (60 dB within a story's sentences).
NEW_PLAYBACK_S = 1.0
# Residual echo suppression: a 32 ms frame the canceller took at least RESIDUAL_DB out of was echo
# only, and is brought down to the room's level (by SUPPRESS, -40 dB, at most). A child talking over
# the story keeps the frame while their voice is no more than about RESIDUAL_DB under the echo.
RESIDUAL_DB = 12.0
SUPPRESS = 0.01
HOLD_FRAMES = 3  # 100 ms kept after a frame with a voice in it: the gaps inside a word
VOICE_DB = 6.0  # a frame the canceller took less than this out of, this far above the room, has a voice
QUIET_FRAMES = 10  # 320 ms after the far end went quiet, what the microphone hears is the room


class EchoError(ListenError):
    """The echo canceller cannot run."""


def _db(x: np.ndarray) -> float:
    return 10.0 * math.log10(float(np.mean(np.square(x, dtype=np.float64))) + 1e-12) if len(x) else -120.0


class StreamResampler:
    """Linear-interpolation resampling of a stream in blocks, continuous across them (the far-end reference)."""

    def __init__(self, src_rate: int, dst_rate: int = RATE):
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._step = src_rate / dst_rate
        self._pos = 0.0  # where the next output sample lies, in input samples from the start of _tail
        self._tail = np.zeros(0, dtype=np.float32)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """The next block's samples at dst_rate."""
        if self.src_rate == self.dst_rate:
            return np.asarray(block, dtype=np.float32)
        x = np.concatenate([self._tail, np.asarray(block, dtype=np.float32)])
        n = int(max(0.0, math.floor((len(x) - 1 - self._pos) / self._step) + 1)) if len(x) > 1 else 0
        at = self._pos + self._step * np.arange(n)
        out = np.interp(at, np.arange(len(x)), x).astype(np.float32)
        self._pos += self._step * n
        keep = int(math.floor(self._pos))  # the input sample left of the next output stays for interpolation
        self._tail, self._pos = x[keep:], self._pos - keep
        return out


class PlayedAudio:
    """What the speaker played, at 16 kHz on the monotonic clock: the far-end reference of the canceller.

    The speaker (or the start-up check) calls played() after each block it hands the device; the
    canceller reads the same span of time as each microphone frame. Older than `seconds` is forgotten.
    """

    def __init__(self, seconds: float = 8.0, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._buf = np.zeros(int(seconds * RATE), dtype=np.float32)
        self._t0 = clock()
        self._end: Optional[int] = None  # absolute sample index where the last block ended
        self._resampler: Optional[StreamResampler] = None
        self._lock = threading.Condition()
        self._written_at = -math.inf  # when the last block came (the speaker is playing if just now)
        self.active_s = 0.0  # seconds of far-end sound so far (the canceller settles on it)
        self.playback_s = 0.0  # of it, since the far end was last quiet for NEW_PLAYBACK_S
        self._sounded_at = -math.inf  # when the last block with sound in it came

    def index(self, at: float) -> int:
        """The absolute sample index of a moment on the clock."""
        return int(round((at - self._t0) * RATE))

    def played(self, samples: np.ndarray, rate: int, at: Optional[float] = None) -> None:
        """A block handed to the device at `at` (now if None); contiguous with the last one when it follows it."""
        start = self.index(self.clock() if at is None else at)
        with self._lock:
            # Written before the last block has played (the device's buffer filling at the start of
            # a sentence) or just after it: the device plays them back to back. Later: a new stream.
            follows = self._end is not None and start <= self._end + JOIN_S * RATE
            if not follows or self._resampler is None or self._resampler.src_rate != rate:
                self._resampler = StreamResampler(rate)
            x = self._resampler(samples)
            if follows:
                start = self._end
            self._write(start, x)
            self._written_at = self.clock()
            if _db(x) > ACTIVE_DBFS:
                now = self.clock()
                if now - self._sounded_at >= NEW_PLAYBACK_S:
                    self.playback_s = 0.0
                self.active_s += len(x) / RATE
                self.playback_s += len(x) / RATE
                self._sounded_at = now
            self._lock.notify_all()

    def playing_s(self) -> float:
        """Seconds of sound in the playback going on (0.0 once the far end has been quiet NEW_PLAYBACK_S)."""
        with self._lock:
            return self.playback_s if self.clock() - self._sounded_at < NEW_PLAYBACK_S else 0.0

    def wait_for(self, end: int, timeout: float = WAIT_S) -> None:
        """While the speaker is playing, wait (up to timeout) until what it plays up to index end is here.

        A microphone frame can come before the block the speaker was handing the device at that
        moment: read at once, the far end would end in silence the speaker never played.
        """
        with self._lock:
            if self.clock() - self._written_at < PLAYING_S:
                self._lock.wait_for(lambda: self._end is not None and self._end >= end, timeout)

    def _write(self, start: int, x: np.ndarray) -> None:
        size = len(self._buf)
        if self._end is not None and start > self._end:
            self._clear(self._end, min(start, self._end + size))  # silence between the sentences
        if len(x) > size:
            start, x = start + len(x) - size, x[-size:]
        self._buf[(start + np.arange(len(x))) % size] = x
        self._end = start + len(x) if self._end is None else max(self._end, start + len(x))

    def _clear(self, a: int, b: int) -> None:
        idx = np.arange(a, b) % len(self._buf)
        self._buf[idx] = 0.0

    def window(self, end: int, n: int) -> np.ndarray:
        """The n samples before absolute index end; silence where nothing was played (or it is forgotten)."""
        out = np.zeros(n, dtype=np.float32)
        with self._lock:
            if self._end is None:
                return out
            lo = max(end - n, self._end - len(self._buf))
            hi = min(end, self._end)
            if hi > lo:
                out[lo - (end - n) : hi - (end - n)] = self._buf[np.arange(lo, hi) % len(self._buf)]
        return out


class EchoCanceller:
    """WebRTC AEC3 on the microphone's 16 kHz frames, with PlayedAudio as the far end; frames keep their length.

    The output lags the input by 10 to 20 ms (AEC3 takes 10 ms at a time; the first 10 ms are silence).
    `settled` is true once it has heard settle_s of the speaker, and resettle_s of each new playback
    (AEC3 finds the echo again at each): before that a voice is not trusted to be the child's
    (barge-in waits, the stop word still works).
    """

    def __init__(self, reference: PlayedAudio, delay_ms: int = 0, settle_s: float = 1.0,
                 reanchor_s: float = REANCHOR_S, residual_db: Optional[float] = RESIDUAL_DB,
                 resettle_s: float = 0.0):
        try:
            import pywebrtc_audio
        except ImportError as err:
            raise EchoError(f"echo cancellation needs pywebrtc-audio ({err}): pip install pywebrtc-audio==0.2.0, "
                            "or set listen.echo_cancel: off") from err
        self._make = lambda: pywebrtc_audio.EchoCanceller(RATE, 1, int(delay_ms))
        self._aec = self._make()
        self.reference, self.settle_s, self.reanchor_s = reference, settle_s, reanchor_s
        self.resettle_s = resettle_s
        self.residual_db = residual_db  # None: AEC3's output as it is (the benchmark's comparison)
        self._heard_from = reference.active_s
        self._cursor: Optional[int] = None
        self._near = np.zeros(0, dtype=np.float32)
        self._far = np.zeros(0, dtype=np.float32)
        self._out = np.zeros(CHUNK, dtype=np.float32)
        self._hold = 0  # frames still kept after the last one that held more than echo
        self._far_quiet = 0  # frames since the far end last sounded
        self._room: collections.deque = collections.deque(maxlen=125)  # levels of the last 4 s without the speaker
        self._rng = np.random.default_rng(0)  # the comfort noise
        self.reanchored: list[float] = []  # each jump of the far end (s): the canceller finds the echo again
        self._lock = threading.Lock()

    def _suppress(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> np.ndarray:
        """What AEC3 left of a frame it took RESIDUAL_DB or more out of: echo, so brought to the room's level.

        A frame the canceller took that much out of held nothing but the speaker; a child speaking
        over it leaves far more (their voice is not in the far end), and is kept, with HOLD_FRAMES
        after it so that their words are not chopped. Measured live: AEC3 takes out 40-75 dB of the
        echo but only 5-25 dB in some 100 ms at a sentence's start, enough for the VAD to hear the app.
        """
        level, heard = _db(out), _db(near)
        self._far_quiet = self._far_quiet + 1 if _db(far) <= ACTIVE_DBFS else 0
        if self._far_quiet >= QUIET_FRAMES:  # the speaker's last echo has died away: the room itself
            self._room.append(level)
        room = float(np.percentile(self._room, 20)) if self._room else -120.0
        if self.residual_db is not None and level <= heard - self.residual_db:
            if self._hold <= 0:
                # To the room's own level, neither above nor below it: the VAD's noise floor follows
                # the room through the story as between turns, so the classmates' murmur stays murmur.
                # AEC3's own suppressor leaves such frames at -80 to -95 dBFS, under the murmur it
                # took out with the echo; a floor learnt on them put the murmur 20 dB over it after
                # each sentence, and the murmur stopped the story. Those get the room's level back as
                # noise (a telephone canceller's comfort noise), which Silero does not take for speech.
                if level > room:
                    return out * max(SUPPRESS, 10 ** ((room - level) / 20))
                fill = math.sqrt(max(0.0, 10 ** (room / 10) - 10 ** (level / 10)))  # what brings it up to the room
                return out + self._rng.normal(0.0, fill, len(out)).astype(np.float32)
            self._hold -= 1
        elif level > room + VOICE_DB and level > heard - VOICE_DB:
            self._hold = HOLD_FRAMES  # a sound the far end does not explain: a voice, kept with its gaps
        return out

    @property
    def settled(self) -> bool:
        """It has adapted to the room, and to this playback, enough to tell a voice from its echo."""
        if self.reference.active_s - self._heard_from < self.settle_s:
            return False
        playing = self.reference.playing_s()  # 0.0: nothing playing, nothing to echo
        return playing == 0.0 or playing >= self.resettle_s

    def reset(self) -> None:
        """Forget the room (a new device): adapt again, and wait settle_s again before trusting a voice."""
        with self._lock:
            self._aec = self._make()
            self._heard_from = self.reference.active_s
            self._cursor = None

    def skip(self, n: int) -> None:
        """n microphone samples were dropped unheard (a drain): the far end moves on with them, exactly."""
        with self._lock:
            if self._cursor is not None:
                self._cursor += n

    def process(self, frame: np.ndarray, at: float) -> np.ndarray:
        """One microphone frame whose last sample was captured at `at` (monotonic), echo removed."""
        with self._lock:
            frame = np.asarray(frame, dtype=np.float32)
            n = len(frame)
            # The far end follows the microphone's own sample count, so that it is one unbroken
            # stream as the near end is; the capture time re-anchors it where they part (frames
            # dropped or drained, a device reopened, the clocks drifting apart).
            stamped = self.reference.index(at)
            if self._cursor is None or abs(stamped - self._cursor) > self.reanchor_s * RATE:
                if self._cursor is not None:
                    self.reanchored.append(round((stamped - self._cursor) / RATE, 3))
                    log.debug("echo canceller: the far end moved by %+.0f ms (frames lost, or a clock jumped)",
                             1000 * self.reanchored[-1])
                self._cursor = stamped
            self.reference.wait_for(self._cursor)
            far = self.reference.window(self._cursor, n)
            self._cursor += n
            self._near = np.concatenate([self._near, frame])
            self._far = np.concatenate([self._far, far])
            done = []
            while len(self._near) >= CHUNK:
                out = np.asarray(self._aec.process(self._near[:CHUNK], self._far[:CHUNK]), dtype=np.float32).reshape(-1)
                done.append(out)
                self._near, self._far = self._near[CHUNK:], self._far[CHUNK:]
            self._out = np.concatenate([self._out, *done])
            result, self._out = self._out[:n], self._out[n:]
            if len(result) < n:  # cannot happen with the 10 ms head start; kept whole all the same
                result = np.pad(result, (n - len(result), 0))
            return self._suppress(frame, far, result)


@dataclass(frozen=True)
class EchoReport:
    """What the start-up check measured: the echo path, and what the canceller left of it."""

    echo_dbfs: float  # the speaker's sound as the microphone heard it (before cancellation)
    erl_db: float  # echo return loss: how much quieter the echo is than what was played
    delay_ms: Optional[float]  # the echo path's delay (None: no echo heard)
    erle_db: float  # echo return loss enhancement: how much the canceller took out, once adapted
    residual_dbfs: float  # what was left of the echo
    ok: bool
    reason: str

    def line(self) -> str:
        """One line for the log."""
        delay = "-" if self.delay_ms is None else f"{self.delay_ms:.0f} ms"
        return (f"echo check: echo {self.echo_dbfs:.0f} dBFS (return loss {self.erl_db:.0f} dB, delay {delay}), "
                f"cancelled by {self.erle_db:.0f} dB to {self.residual_dbfs:.0f} dBFS: {self.reason}")


def judge(far: np.ndarray, near: np.ndarray, cancelled: np.ndarray, quiet_dbfs: float = -55.0,
          min_erle_db: float = 15.0) -> EchoReport:
    """The verdict on one probe: far (what was played), near (the raw microphone), cancelled, all 16 kHz and aligned.

    Safe when the echo never reaches quiet_dbfs (a headset, a far speaker), or when the canceller
    takes out min_erle_db of it once adapted (judged on the probe's second half) and leaves it quiet.
    """
    far_db, echo_db = _db(far), _db(near)
    delay = _delay_ms(far, near) if echo_db > quiet_dbfs else None
    # Judged where the echo is loud in the second half: the canceller has had the first to adapt,
    # and the quiet tail would only measure the room's noise.
    blocks = [slice(i, i + CHUNK) for i in range(len(near) // 2, len(near) - CHUNK + 1, CHUNK)]
    levels = [_db(near[b]) for b in blocks]
    loud = [b for b, level in zip(blocks, levels) if level >= max(levels, default=-120.0) - 20.0]
    raw = np.concatenate([near[b] for b in loud]) if loud else near
    left = np.concatenate([cancelled[b] for b in loud]) if loud else cancelled
    residual = _db(left)
    erle = _db(raw) - residual
    if echo_db <= quiet_dbfs:
        ok, reason = True, "the microphone does not hear the speaker: barge-in on"
    elif erle >= min_erle_db and residual <= quiet_dbfs + 10.0:
        ok, reason = True, "barge-in on"
    else:
        ok, reason = False, "too much echo left: barge-in off (half-duplex), 'stop' still works"
    return EchoReport(round(echo_db, 1), round(far_db - echo_db, 1), delay, round(erle, 1), round(residual, 1), ok, reason)


def _delay_ms(far: np.ndarray, near: np.ndarray, max_ms: float = 500.0) -> Optional[float]:
    """The lag of near behind far with the largest correlation, within max_ms."""
    n = len(far) + len(near)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(near, size) * np.conj(np.fft.rfft(far, size)), size)
    lags = corr[: int(max_ms * RATE / 1000)]
    return round(1000.0 * int(np.argmax(np.abs(lags))) / RATE, 1) if len(lags) else None


def probe_sound(seconds: float = 1.2, rate: int = 22050) -> np.ndarray:
    """A soft 'whoosh' brightening as it goes: shaped noise, broad enough for the canceller to learn the room.

    Tones are no good: on a rising whoop AEC3 stopped cancelling after 0.3 s; on speech or noise it
    took out 20-35 dB from the first quarter second (measured, tests/test_echo.py).
    """
    n = int(seconds * rate)
    t = np.arange(n) / n
    noise = np.random.default_rng(0).normal(0.0, 1.0, n)
    dull = np.convolve(noise, np.ones(12) / 12, mode="same") * 3.0  # a low-passed start: softer
    x = ((1 - t) * dull + t * noise * 0.6) * np.sin(np.pi * t) ** 0.7
    return (0.2 * x / np.max(np.abs(x))).astype(np.float32)


def check_echo(write: Callable[[np.ndarray, int], Any], frames: Iterable[tuple[np.ndarray, float]],
               reference: PlayedAudio, canceller: Optional[EchoCanceller] = None, probe: Optional[np.ndarray] = None,
               rate: int = 22050, block_s: float = 0.02, tail_s: float = 0.5, feed: bool = True) -> EchoReport:
    """Play the probe through write(block, rate) while the microphone's (frame, at) pairs are read; judge the echo.

    Each block goes to the reference as it is written, exactly as the speaker's do (feed=False:
    the speaker's monitor fills the reference, and hears the probe by itself), and the
    canceller (None: the sound server cancels, the microphone is already clean) adapts to the room
    on the probe. Runs on the caller's thread; the reading is a thread of its own.
    """
    probe = probe_sound(rate=rate) if probe is None else probe
    heard: list[tuple[np.ndarray, float]] = []
    done = threading.Event()

    def read() -> None:
        for frame, at in frames:
            heard.append((frame, at))
            if done.is_set():
                return

    reader = threading.Thread(target=read, name="echo-check", daemon=True)
    reader.start()
    began = time.monotonic()
    block = int(rate * block_s)
    for i in range(0, len(probe), block):
        chunk = probe[i : i + block]
        write(chunk, rate)
        if feed:
            reference.played(chunk, rate)
    time.sleep(tail_s)  # the echo's tail, and the frames still on their way
    done.set()
    reader.join(2.0)
    taken = [(f, at) for f, at in heard if at >= began]
    if not taken:
        raise EchoError("echo check: the microphone sent nothing while the probe played")
    near = np.concatenate([f for f, _ in taken])
    cancelled = np.concatenate([canceller.process(f, at) for f, at in taken]) if canceller is not None else near
    far = reference.window(reference.index(taken[-1][1]), len(near))
    return judge(far, near, cancelled)

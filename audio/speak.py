"""The speaker: sentences in, speech out in order, synthesizing N+1 while N plays; `stop()` at once."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from audio.cue import listening_cue
from audio.devices import DeviceOutput, WavRecorder, short_reason
from audio.tts import Audio, Synthesizer
from audio.wordtiming import estimate
from errors import SinkError
from events import ErrorEvent, EventBus, SpeakEnd, SpeakStart, SpeakStopped, WordSpoken

if TYPE_CHECKING:
    from audio.echo import PlayedAudio

log = logging.getLogger(__name__)

# Playback is written in 20 ms blocks, and stop() is checked between blocks: speech ends within
# one block plus PortAudio's small buffer, well under the 100 ms a child would notice.
BLOCK_S = 0.02
# In --output-wav, longer waits (the child thinking between turns) are shortened to this.
MAX_WAV_GAP_S = 3.0
# A lost output device is tried again RETRY_FIRST_S after the loss, then after twice as long
# each time, up to RETRY_MAX_S; sentences that come meanwhile are dropped, not waited for.
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0
# close(): the play loop ends within a block; a write stuck in the device is aborted after
# PLAY_JOIN_S; synthesis of one sentence (eSpeak: tens of ms, Piper: up to a second) is waited for.
PLAY_JOIN_S = 0.3
ABORT_JOIN_S = 0.5
SYNTH_JOIN_S = 1.0
# wait_idle() wakes this often, so that Ctrl-C or SIGTERM in the main thread is seen at once.
WAIT_SLICE_S = 0.05


class Backoff:
    """When to try a lost device again: first_s after the loss, then doubling up to max_s."""

    def __init__(self, clock: Callable[[], float], first_s: float = RETRY_FIRST_S, max_s: float = RETRY_MAX_S):
        self.clock, self.first_s, self.max_s = clock, first_s, max_s
        self.failures = 0
        self._next = 0.0

    @property
    def lost(self) -> bool:
        """The last attempt failed."""
        return self.failures > 0

    def due(self) -> bool:
        """The pause after the last failure is over."""
        return self.clock() >= self._next

    def failed(self) -> float:
        """One more failure; returns the pause before the next attempt."""
        self.failures += 1
        delay = min(self.max_s, self.first_s * 2 ** (self.failures - 1))
        self._next = self.clock() + delay
        return delay

    def succeeded(self) -> None:
        """Working again."""
        self.failures = 0


@dataclass(frozen=True)
class Cues:
    """What say() calls back, from the playback thread, as one sentence is heard."""

    started: Optional[Callable[[], None]] = None  # its first audio was written (with speak_start)
    played: Optional[Callable[[], None]] = None  # it played whole (with speak_end); not when cut or dropped


class Speaker:
    """Speaks queued sentences in order; one synthesis thread and one playback thread own the engine and device.

    The threads run from start() to close(): `with Speaker(...) as speaker:` or `Speaker(...).start()`.

    A device that fails (the sound server restarted, a speaker unplugged) is closed and opened again
    with a growing pause (Backoff), and sentences that cannot be played meanwhile are dropped as
    `speak_stopped` with what was really played; one warning at the loss, one line when it is back.
    A failed wav write is one warning; the recording and the session go on (WavRecorder).
    """

    def __init__(
        self,
        synth: Synthesizer,
        bus: EventBus,
        output: Optional[DeviceOutput] = None,
        recorder: Optional[WavRecorder] = None,
        clock: Callable[[], float] = time.monotonic,
        retry: Optional[Backoff] = None,
        reference: Optional["PlayedAudio"] = None,
    ):
        self._rendered: dict[str, Audio] = {}  # lines made ahead (prepare): said without waiting for the voice
        self.synth, self.bus, self.output, self.recorder = synth, bus, output, recorder
        self.reference = reference  # what was played, for the microphone's echo canceller
        # Set from the teacher's page while the app runs: read by the playback thread per block.
        self.gain = 1.0
        self.clock = clock
        self.retry = retry or Backoff(clock)
        self._texts: queue.Queue = queue.Queue()
        self._audio: queue.Queue = queue.Queue(maxsize=2)  # synthesis runs at most two sentences ahead
        self._epoch = 0  # bumped by stop(): anything queued under an older epoch is dropped
        self._pending = 0  # sentences said but not yet played or dropped
        self._idle = threading.Condition()
        self._closed = False
        self._heard_until: Optional[float] = None  # when the listener stops hearing the last sentence
        # Made by start(): building a speaker (in a test, a tool, main) runs nothing until asked.
        self._synth_thread: Optional[threading.Thread] = None
        self._play_thread: Optional[threading.Thread] = None

    def start(self) -> "Speaker":
        """Start the synthesis and playback threads; again (or after close()) does nothing. Returns the speaker."""
        with self._idle:
            if self._play_thread is None and not self._closed:
                self._synth_thread = threading.Thread(target=self._synth_loop, name="tts-synth", daemon=True)
                self._play_thread = threading.Thread(target=self._play_loop, name="tts-play", daemon=True)
                self._synth_thread.start()
                self._play_thread.start()
        return self

    def __enter__(self) -> "Speaker":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def synth(self) -> Synthesizer:
        """The voice; setting another (the teacher's page) takes effect from the next sentence made."""
        return self._synth

    @synth.setter
    def synth(self, value: Synthesizer) -> None:
        self._synth, self._rendered = value, {}  # lines made by the old voice are not the new one's

    def prepare(self, texts: list[str]) -> None:
        """Make lines said often (the acknowledgements) ahead, so they start the moment they are said."""
        synth, cache = self._synth, self._rendered  # a voice set meanwhile gets a cache of its own
        for text in texts:
            if self._closed or synth is not self._synth:
                return
            try:
                cache[text] = synth.synthesize(text)
            except Exception:  # noqa: BLE001 - it is only a head start: the line is made when said
                log.debug("could not prepare %r", text[:40], exc_info=True)

    def say(self, text: str, started: Optional[Callable[[], None]] = None,
            played: Optional[Callable[[], None]] = None) -> None:
        """Queue a sentence; returns at once (after close(), nothing is said).

        started() is called from the playback thread when the sentence's first audio is written,
        played() when it has played whole (never for one stopped, cut or dropped): the same moments
        as its speak_start and speak_end events. A callback that raises is logged; playback goes on.
        """
        with self._idle:
            if self._closed:
                return
            if self._play_thread is None:
                raise RuntimeError("Speaker.say() before start(): nothing would ever play it")
            self._pending += 1
            self._texts.put((self._epoch, text, Cues(started, played), None))

    def cue(self) -> None:
        """Queue the listening cue (audio/cue.py): played in turn like a sentence, shown nowhere, never synthesized."""
        rate = (self.output.sample_rate if self.output else 0) or next(
            (a.sample_rate for a in self._rendered.values()), 22050)  # the voice's rate: the stream stays open
        with self._idle:
            if self._closed or self._play_thread is None:
                return
            self._pending += 1
            self._texts.put((self._epoch, "", Cues(), listening_cue(rate)))

    def stop(self) -> None:
        """Silence now: the sentence playing is cut, everything queued is discarded."""
        with self._idle:
            if not self._closed:  # after close() there is nothing to stop, and its end markers must stay queued
                self._silence()

    def _silence(self) -> None:
        self._epoch += 1
        for q in (self._texts, self._audio):
            self._pending -= self._drain(q)
        self._idle.notify_all()

    @staticmethod
    def _drain(q: queue.Queue) -> int:
        """Empty a queue; returns how many sentences it held (end-of-loop markers are not sentences)."""
        taken = 0
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                return taken
            taken += item is not None

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until everything said has been played (or dropped); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
                if left <= 0:
                    return False
                # In slices: an interrupt sent to the main thread (SIGTERM via _thread.interrupt_main)
                # is only raised between bytecodes, never inside one long untimed wait.
                self._idle.wait(left)
            return True

    def close(self) -> None:
        """Stop playback, end and join both threads, then release the device and the wav file; safe to call again.

        The device and the file are closed only once no thread can be writing to them: a write stuck
        in the device is aborted first, and what still holds either after that is left open
        (DeviceOutput/WavRecorder.close never close under a writer).
        """
        began = time.monotonic()
        with self._idle:
            if self._closed:
                return
            self._closed = True
            self._silence()
            self._texts.put(None)
            try:
                # Fits: _silence() emptied it, and synthesis adds at most the sentence it has in hand.
                self._audio.put_nowait(None)
            except queue.Full:
                log.debug("speaker: playback queue full at close; the join below is bounded")
        if self._play_thread is not None:  # never started: no thread to end
            self._end_threads()
        if self.output is not None:
            self.output.close()
        if self.recorder is not None:
            self.recorder.close()
        with self._idle:
            self._pending = 0
            self._idle.notify_all()
        log.debug("speaker: closed in %.0f ms", 1000 * (time.monotonic() - began))

    def _end_threads(self) -> None:
        """Join both threads, aborting a write stuck in the device; close() has queued their end markers."""
        if not self._join(self._play_thread, PLAY_JOIN_S) and self.output is not None and hasattr(self.output, "abort"):
            self.output.abort()
            if not self._join(self._play_thread, ABORT_JOIN_S):
                log.warning("speaker: playback did not end after the device was aborted")
        if not self._join(self._synth_thread, SYNTH_JOIN_S):
            log.warning("speaker: the voice was still synthesizing a sentence at shutdown")

    @staticmethod
    def _join(thread: threading.Thread, timeout: float) -> bool:
        thread.join(timeout)
        return not thread.is_alive()

    def _finished_one(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _synth_loop(self) -> None:
        while (item := self._texts.get()) is not None:
            epoch, text, cues, audio = item
            if epoch != self._epoch:
                self._finished_one()  # taken just before a stop(), so stop() could not drain it
                continue
            try:
                audio = audio if audio is not None else self._rendered.get(text) or self.synth.synthesize(text)
            except Exception as err:  # noqa: BLE001 - a bad sentence must not end the session
                log.error("could not speak %r: %s", text[:40], err)
                self.bus.emit(ErrorEvent(stage="tts", message=str(err)))
                self._finished_one()
                continue
            if epoch != self._epoch:
                self._finished_one()  # stopped (or closed) while it was made
                continue
            self._audio.put((epoch, text, audio, cues))

    def _play_loop(self) -> None:
        while (item := self._audio.get()) is not None:
            try:
                epoch, text, audio, cues = item
                if epoch == self._epoch:
                    self._play(epoch, text, audio, cues)
                if self.output and self._audio.empty():
                    self._device(self.output.pause)
            except Exception:  # noqa: BLE001 - this thread must outlive any fault, or wait_idle() would never return
                log.exception("speaker: unexpected error")
            finally:
                self._finished_one()

    def _play(self, epoch: int, text: str, audio: Audio, cues: Cues) -> None:
        if self.output and not self._output_ready():
            self._stopped(text, 0, audio, reason="speaker")
            return
        start = self.clock()
        if self.recorder:
            # The wav keeps the pause a listener would have heard while the next sentence was made.
            if self._heard_until is not None:
                self._record(self.recorder.silence, min(max(0.0, start - self._heard_until), MAX_WAV_GAP_S))
            start = max(start, self._heard_until or start)
        self._heard_until = start + audio.duration
        if len(audio.samples) == 0:
            self._started(text, cues)  # nothing to play, but the sentence still had its turn
        played = self._blocks(epoch, text, audio, cues)
        if played == len(audio.samples):
            if text:
                self.bus.emit(SpeakEnd(text=text))
            self._call(cues.played, "played", text)
            return
        if self.output and not self.retry.lost:
            self._device(self.output.discard)  # cut by stop(): drop what is still buffered
        self._heard_until = self.clock()
        self._stopped(text, played, audio, reason="speaker" if self.retry.lost else "stop")

    def _blocks(self, epoch: int, text: str, audio: Audio, cues: Cues) -> int:
        """Play a sentence block by block until it ends, stop() is called or the device fails; returns samples played."""
        words = audio.words or estimate(text, audio.samples, audio.sample_rate)
        block = max(1, int(audio.sample_rate * BLOCK_S))
        played = next_word = 0
        while played < len(audio.samples) and epoch == self._epoch:
            chunk = audio.samples[played : played + block]
            if self.gain != 1.0:  # the teacher's volume, applied as it is played: heard at once
                chunk = (chunk * self.gain).astype(np.float32)
            # Paced by the device: it returns once the block is queued, a few ms before it is
            # heard. The first write of a sentence may wait for the stream to start.
            if self.output and not self._write(chunk, audio.sample_rate):
                break
            if self.output and self.reference is not None:
                self.reference.played(chunk, audio.sample_rate)  # on the device's pace: the echo to come
            if self.recorder:
                self._record(self.recorder.write, chunk, audio.sample_rate)
            if played == 0:
                self._started(text, cues)
            # Words whose first sample is in this block are announced now, on the sample clock.
            while next_word < len(words) and words[next_word].start * audio.sample_rate < played + len(chunk):
                w = words[next_word]
                self.bus.emit(WordSpoken(sentence=text, index=next_word, word=w.word, start=w.start, end=w.end))
                next_word += 1
            played += len(chunk)
        return played

    def _started(self, text: str, cues: Cues) -> None:
        if text:  # the cue ("") is no sentence: the screen shows none for it
            self.bus.emit(SpeakStart(text=text))
        self._call(cues.started, "started", text)

    @staticmethod
    def _call(callback: Optional[Callable[[], None]], name: str, text: str) -> None:
        """Run one of say()'s callbacks; one that raises is logged and the sentence plays on."""
        if callback is None:
            return
        try:
            callback()
        except Exception:  # noqa: BLE001 - the caller's bug must not cut the story short
            log.exception("speaker: the %s callback for %r failed", name, text[:40])

    def _stopped(self, text: str, played: int, audio: Audio, reason: str) -> None:
        if text:
            self.bus.emit(SpeakStopped(text=text, played_s=round(played / audio.sample_rate, 3), reason=reason))

    def _output_ready(self) -> bool:
        """The device can take a sentence: it works, or it was lost, its pause is over and it answers again."""
        if not self.retry.lost:
            return True
        if not self.retry.due():
            return False
        # A quiet test first: a PortAudio open that fails prints a page of its own to stderr.
        reason = self._probe()
        if reason:
            delay = self.retry.failed()
            log.debug("speaker: still lost (%s); next try in %.1f s", reason, delay)
            return False
        return True

    def _probe(self) -> Optional[str]:
        """Why the device cannot be opened now, if it can tell without trying (DeviceOutput.available)."""
        try:
            return self.output.available() if hasattr(self.output, "available") else None
        except Exception as err:  # noqa: BLE001 - a test that fails says nothing of the device
            log.debug("speaker: cannot test the device: %s", err)
            return None

    def _write(self, chunk: Any, rate: int) -> bool:
        """One block to the device; the first one that works after a loss says so."""
        if not self._device(self.output.write, chunk, rate):
            return False
        if self.retry.lost:
            self.retry.succeeded()
            log.info("speaker back")
        return True

    def _device(self, action: Callable[..., Any], *args: Any) -> bool:
        """Run one device call; a failure marks the speaker lost (said once) and returns False."""
        try:
            action(*args)
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types; the story goes on
            self._lost(err)
            return False
        return True

    def _lost(self, err: Exception) -> None:
        if self._closed:
            return  # closing: a write cut by abort() is no loss
        first = not self.retry.lost
        delay = self.retry.failed()
        # The quiet test often says more than PortAudio ("Connection refused" for "Input/output error").
        reason = self._probe() or short_reason(err.__cause__ or err)
        if first:
            log.warning("speaker lost: %s; retrying", reason)
            self.bus.emit(ErrorEvent(stage="speaker", message=f"speaker lost: {reason}"))
        else:
            log.debug("speaker: still lost (%s); next try in %.1f s", reason, delay)

    def _record(self, action: Callable[..., None], *args: Any) -> None:
        """Write to the wav; a fault there is one warning and an `error` event, never the end of the story."""
        try:
            action(*args)
        except SinkError as err:
            log.warning("%s", err)
            self.bus.emit(ErrorEvent(stage="output_wav", message=str(err)))
        except Exception as err:  # noqa: BLE001 - an unforeseen fault in the recorder: the child still hears the story
            log.warning("output wav: %s", err)
            self.bus.emit(ErrorEvent(stage="output_wav", message=str(err)))


def describe(speaker: Any) -> str:
    """One line for the start-up log."""
    parts = [type(speaker.synth).__name__.replace("Synthesizer", "")]
    if speaker.output:
        parts.append(f"device {speaker.output.device or 'default'}")
    if speaker.recorder:
        parts.append(f"wav {speaker.recorder.path}")
    return ", ".join(parts)

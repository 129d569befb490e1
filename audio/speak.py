"""The speaker: sentences in, speech out in order, synthesizing N+1 while N plays; `stop()` at once."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any, Callable, Optional

from audio.devices import DeviceOutput, WavRecorder
from audio.tts import Audio, Synthesizer
from audio.wordtiming import estimate
from events import ErrorEvent, EventBus, SpeakEnd, SpeakStart, SpeakStopped, WordSpoken

log = logging.getLogger(__name__)

# Playback is written in 20 ms blocks, and stop() is checked between blocks: speech ends within
# one block plus PortAudio's small buffer, well under the 100 ms a child would notice.
BLOCK_S = 0.02
# In --output-wav, longer waits (the child thinking between turns) are shortened to this.
MAX_WAV_GAP_S = 3.0


class Speaker:
    """Speaks queued sentences in order; one synthesis thread and one playback thread own the engine and device."""

    def __init__(
        self,
        synth: Synthesizer,
        bus: EventBus,
        output: Optional[DeviceOutput] = None,
        recorder: Optional[WavRecorder] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.synth, self.bus, self.output, self.recorder = synth, bus, output, recorder
        self.clock = clock
        self._texts: queue.Queue = queue.Queue()
        self._audio: queue.Queue = queue.Queue(maxsize=2)  # synthesis runs at most two sentences ahead
        self._epoch = 0  # bumped by stop(): anything queued under an older epoch is dropped
        self._pending = 0  # sentences said but not yet played or dropped
        self._idle = threading.Condition()
        self._heard_until: Optional[float] = None  # when the listener stops hearing the last sentence
        self._threads = [
            threading.Thread(target=self._synth_loop, name="tts-synth", daemon=True),
            threading.Thread(target=self._play_loop, name="tts-play", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def say(self, text: str) -> None:
        """Queue a sentence; returns at once."""
        with self._idle:
            self._pending += 1
            self._texts.put((self._epoch, text))

    def stop(self) -> None:
        """Silence now: the sentence playing is cut, everything queued is discarded."""
        with self._idle:
            self._epoch += 1
            for q in (self._texts, self._audio):
                while True:
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        break
                    self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: Optional[float] = None) -> bool:
        """Block until everything said has been played (or dropped); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending <= 0, timeout)

    def close(self) -> None:
        """Stop, end both threads and release the device and the wav file."""
        self.stop()
        self._texts.put(None)
        for t in self._threads:
            t.join(timeout=1.0)
        if self.output:
            self.output.close()
        if self.recorder:
            self.recorder.close()

    def _finished_one(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _synth_loop(self) -> None:
        while (item := self._texts.get()) is not None:
            epoch, text = item
            if epoch != self._epoch:
                self._finished_one()  # taken just before a stop(), so stop() could not drain it
                continue
            try:
                audio = self.synth.synthesize(text)
            except Exception as err:  # noqa: BLE001 - a bad sentence must not end the session
                log.error("could not speak %r: %s", text[:40], err)
                self.bus.emit(ErrorEvent(stage="tts", message=str(err)))
                self._finished_one()
                continue
            self._audio.put((epoch, text, audio))
        self._audio.put(None)

    def _play_loop(self) -> None:
        while (item := self._audio.get()) is not None:
            epoch, text, audio = item
            if epoch == self._epoch:
                self._play(epoch, text, audio)
            if self.output and self._audio.empty():
                self._pause_output()
            self._finished_one()

    def _pause_output(self) -> None:
        try:
            self.output.pause()
        except Exception as err:  # noqa: BLE001
            log.error("audio output failed: %s", err)

    def _play(self, epoch: int, text: str, audio: Audio) -> None:
        start = self.clock()
        if self.recorder:
            # The wav keeps the pause a listener would have heard while the next sentence was made.
            if self._heard_until is not None:
                self.recorder.silence(min(max(0.0, start - self._heard_until), MAX_WAV_GAP_S))
            start = max(start, self._heard_until or start)
        self._heard_until = start + audio.duration
        if len(audio.samples) == 0:
            self.bus.emit(SpeakStart(text=text))  # nothing to play, but the sentence still had its turn
        words = audio.words or estimate(text, audio.samples, audio.sample_rate)
        block = max(1, int(audio.sample_rate * BLOCK_S))
        played = next_word = 0
        try:
            while played < len(audio.samples) and epoch == self._epoch:
                chunk = audio.samples[played : played + block]
                if self.output:
                    # Paced by the device: it returns once the block is queued, a few ms before it
                    # is heard. The first write of a sentence may wait for the stream to start.
                    self.output.write(chunk, audio.sample_rate)
                if self.recorder:
                    self.recorder.write(chunk, audio.sample_rate)
                if played == 0:
                    self.bus.emit(SpeakStart(text=text))
                # Words whose first sample is in this block are announced now, on the sample clock.
                while next_word < len(words) and words[next_word].start * audio.sample_rate < played + len(chunk):
                    w = words[next_word]
                    self.bus.emit(WordSpoken(sentence=text, index=next_word, word=w.word, start=w.start, end=w.end))
                    next_word += 1
                played += len(chunk)
        except Exception as err:  # noqa: BLE001 - a device that vanished mid-story
            log.error("audio output failed: %s", err)
            self.bus.emit(ErrorEvent(stage="speaker", message=str(err)))
        if played < len(audio.samples):
            if self.output:
                try:
                    self.output.discard()
                except Exception as err:  # noqa: BLE001
                    log.error("audio output failed: %s", err)
            self._heard_until = self.clock()
            self.bus.emit(SpeakStopped(text=text, played_s=round(played / audio.sample_rate, 3)))
        else:
            self.bus.emit(SpeakEnd(text=text))


def describe(speaker: Any) -> str:
    """One line for the start-up log."""
    parts = [type(speaker.synth).__name__.replace("Synthesizer", "")]
    if speaker.output:
        parts.append(f"device {speaker.output.device or 'default'}")
    if speaker.recorder:
        parts.append(f"wav {speaker.recorder.path}")
    return ", ".join(parts)

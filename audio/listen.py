"""The listener: audio frames -> voice activity -> one utterance -> Whisper -> what the child said."""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional

import numpy as np

from audio.completeness import judge
from audio.devices import DeviceRef, parse_device, resample
from audio.stt import Transcriber, Transcript
from audio.vad import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, EndpointConfig, NoiseFloor, Segmenter, SpeechEdge, frame_db
from errors import ListenError, MicrophoneError
from events import EventBus, Heard, Listening, NoSpeech, SpeechEnd, SpeechStart

if TYPE_CHECKING:
    from audio.echo import EchoCanceller

log = logging.getLogger(__name__)

# Seconds without a single frame before the microphone is declared gone.
STALL_S = 2.0
# A stream just opened gets longer for its first frame: PulseAudio starts delivering a new
# capture stream 0.8-1.9 s after it is opened (measured here), later still on a loaded machine.
START_S = 6.0
# Silence kept after the last speech frame, so Whisper hears the word end fully.
TAIL_S = 0.2


class _Early:
    """A transcript of the turn so far, made on a thread of its own at a pause, while listening goes on.

    One at a time (the transcriber is not shared across threads); a newer pause waits for it.
    inline: transcribe at once, on the caller's thread, as if the CPU were free (tests and benchmarks
    that time decisions in audio time, so they come out the same on any machine).
    """

    def __init__(self, transcriber: Transcriber, inline: bool = False):
        self.transcriber, self.inline = transcriber, inline
        self.thread: Optional[threading.Thread] = None
        self.result: Optional[Transcript] = None
        self.frames = -1  # how many frames of the turn it read; -1: none yet

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, audio: np.ndarray, frames: int) -> None:
        """Transcribe this much of the turn in the background."""
        self.result, self.frames = None, frames

        def run() -> None:
            try:
                self.result = self.transcriber.transcribe(audio)
            except Exception:  # noqa: BLE001 - no result: the turn is transcribed again at its end, where errors are reported
                log.debug("early transcript failed", exc_info=True)

        if self.inline:
            run()
            return
        self.thread = threading.Thread(target=run, name="stt-early", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        """Let a running transcription finish (before the transcriber is used again)."""
        if self.thread is not None:
            self.thread.join()


class Listener:
    """Turns a stream of 32 ms frames into one transcribed turn at a time.

    With `probe_s`, a pause that long starts transcribing the turn so far; when those words are
    finished (audio/completeness.py) and the pause goes on, the turn ends there, with its
    transcript ready, instead of after the whole end_silence_s and a transcription after it.
    """

    def __init__(
        self,
        scorer: Callable[[np.ndarray], float],
        transcriber: Transcriber,
        bus: EventBus,
        endpoint: EndpointConfig,
        threshold: float = 0.5,
        noise_margin_db: float = 6.0,
        pre_roll_s: float = 0.3,
        unfinished_hold_s: float = 0.0,
        probe_s: float = 0.0,
        turn_model: Optional[Callable[[np.ndarray], float]] = None,
        turn_threshold: float = 0.5,
        turn_hold_below: float = 0.0,
        inline: bool = False,
        start_margin_db: Optional[float] = None,
        resume_s: float = 0.0,
    ):
        self.scorer, self.transcriber, self.bus = scorer, transcriber, bus
        self.endpoint, self.threshold = endpoint, threshold
        self.noise_margin_db, self.pre_roll_s = noise_margin_db, pre_roll_s
        # Speech must stand this far above the room to begin (None: noise_margin_db), and once begun
        # goes on at noise_margin_db: the child at the kiosk is louder than classmates across the
        # room, whose murmur would otherwise start turns and stop stories, and their softer words
        # after the first are not cut.
        self.start_margin_db = noise_margin_db if start_margin_db is None else start_margin_db
        # Words that cannot end a request ("a story about") keep the turn open this much longer.
        self.unfinished_hold_s = unfinished_hold_s
        self.probe_s = probe_s  # 0: no early transcript; the turn ends at end_silence_s
        # After a turn ends on finished words, the child may go on this long and it is one turn:
        # Whisper hears "about the" as "about me" (BENCHMARKS.md 7a), so finished words are not proof.
        self.resume_s = resume_s
        # The sound's say (audio/turn_model.py): P(complete) under turn_threshold postpones an early end
        # (re-scored as the pause grows) but never holds a turn past end_silence_s.
        self.turn_model, self.turn_threshold = turn_model, turn_threshold
        # Under this, the sound holds a turn whose words look finished as open words do (0: never).
        self.turn_hold_below = turn_hold_below
        self.inline = inline  # early transcripts made at once (see _Early)
        self._scored: tuple[int, float] = (-1, 0.0)  # (frames of the turn scored, P(complete)), the latest
        self.ended: Optional[SpeechEnd] = None  # the last end of speech announced
        self._ended_at: Optional[float] = None  # and when (time.monotonic())
        self._ready: Optional[Transcript] = None  # the early transcript of the utterance just returned
        self.noise = NoiseFloor()
        self.heard = (-120.0, -120.0)  # the last frame's level and the floor then (dBFS)

    def is_speech(self, frame: np.ndarray, margin_db: Optional[float] = None) -> bool:
        """Silero says speech, and it stands out of the room's murmur (by margin_db; noise_margin_db if None)."""
        level = frame_db(frame)
        floor = self.noise.update(level)
        margin = self.noise_margin_db if margin_db is None else margin_db
        self.heard = (level, floor)  # the last frame's, for the log of a start
        return self.scorer(frame) >= self.threshold and level >= floor + margin

    def utterance(
        self,
        frames: Iterable[np.ndarray],
        stop: threading.Event,
        on_start: Optional[Callable[[], None]] = None,
        announce: bool = True,
        wait_s: Optional[float] = None,
        prefix: Optional[np.ndarray] = None,
        short_s: Optional[float] = None,
    ) -> Optional[np.ndarray]:
        """Read frames until a whole utterance (with pre-roll) has been heard; None if the input ends first.

        on_start runs the moment speech is confirmed (barge-in stops the speaker there).
        short_s: speech this short is an utterance too (a stop word over the app's voice), though
        it is confirmed (speech_start, on_start) only at min_speech_s, as any other.
        announce: emit `listening` (off while the app speaks: the robot's face shows speaking).
        wait_s: give up (None) when no speech has begun after this long.
        prefix: the turn heard before this part (the rest of an unfinished request): the early
        transcript reads both.
        """
        seg = Segmenter(self.endpoint if short_s is None else dataclasses.replace(self.endpoint, min_speech_s=short_s))
        # Only while the child has the floor: not for the stop word over the app's own voice.
        early = _Early(self.transcriber, self.inline) if self.probe_s > 0 and (announce or prefix is not None) else None
        try:
            return self._utterance(frames, stop, on_start, announce, wait_s, seg, early, prefix, short_s is not None)
        finally:
            if early is not None:
                early.wait()  # never two transcriptions at once: the next one may start right after

    def _utterance(self, frames: Iterable[np.ndarray], stop: threading.Event, on_start: Optional[Callable[[], None]],
                   announce: bool, wait_s: Optional[float], seg: Segmenter, early: Optional[_Early],
                   prefix: Optional[np.ndarray], short: bool = False) -> Optional[np.ndarray]:
        self._ready, self._scored = None, (-1, 0.0)
        confirmed = False
        keep = int((self.pre_roll_s + self.endpoint.min_speech_s + self.endpoint.end_silence_s) / FRAME_S) + 2
        recent: collections.deque = collections.deque(maxlen=keep)  # frames before the turn is confirmed
        taken: list[np.ndarray] = []
        start_index = 0
        if announce:
            self.bus.emit(Listening())
        for i, frame in enumerate(frames):
            if stop.is_set():
                return None
            silence_before = seg.silence_s
            event = seg.process(FRAME_S, self.is_speech(frame, None if seg.speaking else self.start_margin_db))
            if (wait_s is not None and not seg.speaking and seg.speech_start is None and event is not SpeechEdge.END
                    and (i + 1) * FRAME_S >= wait_s):
                return None  # (speech that began just before is heard out: it may be the rest of the turn)
            if seg.speaking or event is SpeechEdge.END:
                taken.append(frame)
            else:
                recent.append((i, frame))
            if event is SpeechEdge.START:
                first = round(seg.speech_start / FRAME_S) - round(self.pre_roll_s / FRAME_S)
                taken = [f for j, f in recent if j >= first] + taken
                start_index = first
                log.debug("speech began: %.0f dBFS, %.0f dB over the room's floor", self.heard[0],
                          self.heard[0] - self.heard[1])
            if seg.speaking and not confirmed and seg.speech_s >= self.endpoint.min_speech_s:
                confirmed = True
                self.bus.emit(SpeechStart())
                if on_start:
                    on_start()
            if event is SpeechEdge.END:
                if short and not confirmed:
                    log.debug("short speech (frames %d-%d): heard for a stop word only", start_index, i)
                    return np.concatenate(taken)  # no speech_start was announced, so no speech_end either
                silence = 0 if seg.forced else int((self.endpoint.end_silence_s - TAIL_S) / FRAME_S)
                self._end(SpeechEnd(forced=seg.forced, silence_s=None if seg.forced else self.endpoint.end_silence_s,
                                    turn_p=self._last_p()))
                log.debug("utterance: frames %d-%d", start_index, i)
                audio = np.concatenate(taken[: len(taken) - silence] if silence else taken)
                if early is not None:
                    early.wait()
                    # The pause it read lasted to the end: its words are this turn's (no second pass).
                    pause_start = len(taken) - round((silence_before + FRAME_S) / FRAME_S)
                    if early.result is not None and early.frames == pause_start:
                        self._ready = early.result
                return audio
            elif early is not None and seg.speaking and event is not SpeechEdge.START:
                decided = self._probe(early, seg, taken, prefix)
                if decided is not None:
                    return decided
        if seg.speaking:  # the recording ended mid-sentence
            self._end(SpeechEnd(forced=True))
            return np.concatenate(taken)
        return None

    def _probe(self, early: _Early, seg: Segmenter, taken: list[np.ndarray],
               prefix: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """At a pause: start the early transcript, or end the turn now when it is back and finished."""
        silence = seg.silence_s
        if silence < self.probe_s or seg.resume > 0:  # resume: the child is speaking again right now
            return None
        pause_start = len(taken) - round(silence / FRAME_S)  # frames of the turn before this pause
        if early.frames != pause_start and not early.busy:
            heard = taken[: pause_start + round(TAIL_S / FRAME_S)]
            early.start(np.concatenate(([prefix] if prefix is not None else []) + heard), pause_start)
            return None
        if early.frames != pause_start or early.busy or early.result is None or not early.result.text:
            return None
        verdict = judge(early.result.text, early.result.language or getattr(self.transcriber, "language", None) or "en")
        if not verdict.finished:
            return None  # an open word: the usual end, then the hold, decide
        p = self._sound_says(taken, pause_start, prefix)
        if p is not None and p < self.turn_threshold:
            return None  # finished words said as if more were coming: wait (re-scored), at most end_silence_s
        seg.end_now()
        self._ready = early.result
        self._end(SpeechEnd(forced=False, silence_s=round(silence, 3), words=verdict.reason, turn_p=p))
        log.debug("turn ended after %.2f s of silence: words %s, sound %s", silence, verdict.reason,
                  "-" if p is None else f"P(complete) {p:.2f}")
        return np.concatenate(taken[: pause_start + round(TAIL_S / FRAME_S)])

    def _sound_says(self, taken: list[np.ndarray], pause_start: int, prefix: Optional[np.ndarray]) -> Optional[float]:
        """The turn model's P(complete) for the turn up to now, pause included; re-scored every probe_s."""
        if self.turn_model is None:
            return None
        frames, p = self._scored
        if frames < pause_start or (len(taken) - frames) * FRAME_S >= self.probe_s:
            # The last 8 s is all the model reads: the request before an unfinished pause counts too.
            audio = np.concatenate(([prefix] if prefix is not None else []) + taken[-round(8 / FRAME_S):])
            p = self.turn_model(audio)
            self._scored = (len(taken), p)
        return p

    def _end(self, event: SpeechEnd) -> None:
        """Announce the end of speech; the transcript carries the last one (how its turn ended)."""
        self.ended, self._ended_at = event, time.monotonic()
        self.bus.emit(event)

    def _last_p(self) -> Optional[float]:
        return None if self._scored[0] < 0 else round(self._scored[1], 3)

    def listen(
        self,
        frames: Iterable[np.ndarray],
        stop: threading.Event,
        on_start: Optional[Callable[[], None]] = None,
        max_seconds: Optional[float] = None,
        announce: bool = True,
        on_cue: Optional[Callable[[], None]] = None,
        resume: bool = True,
        short_s: Optional[float] = None,
    ) -> Optional[Transcript]:
        """One turn: wait for speech, transcribe it; None when the input ended with no speech.

        max_seconds: utterances longer than this are not transcribed (used while the app speaks,
        where only a short stop word matters and Whisper would compete with the model for the CPU).
        on_cue: called the moment the turn seems finished and the listener waits resume_s for more
        (the speaker's listening cue: the child hears at once that they were heard).
        resume: wait resume_s after finished words (False: an answer to a question ends at once).
        short_s: speech this short is transcribed too (the stop word over the app's voice is short).
        """
        frames = iter(frames)
        while not stop.is_set():
            audio = self.utterance(frames, stop, on_start, announce, short_s=short_s)
            if audio is None:
                if not stop.is_set():
                    self.bus.emit(NoSpeech())
                return None
            if max_seconds is not None and len(audio) > max_seconds * SAMPLE_RATE:
                continue
            transcript, self._ready = self._ready or self._transcribe(audio), None
            if transcript.text and max_seconds is None and announce:
                transcript = self._rest_of(transcript, audio, frames, stop, on_cue if resume else None, resume)
            if transcript.text:
                self.bus.emit(Heard(text=transcript.text, language=transcript.language,
                                    duration=round(transcript.duration, 3)))
                return dataclasses.replace(transcript, ended=self.ended, ended_at=self._ended_at)
            log.debug("speech with no words (dropped %d segments); listening on", transcript.dropped)
        return None

    def _transcribe(self, audio: np.ndarray) -> Transcript:
        try:
            return self.transcriber.transcribe(audio)
        except ListenError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ListenError(f"transcription failed: {err}") from err

    def _rest_of(self, transcript: Transcript, audio: np.ndarray, frames: Iterator[np.ndarray],
                 stop: threading.Event, on_cue: Optional[Callable[[], None]] = None, resume: bool = True) -> Transcript:
        """Wait a little longer for the rest of a turn that may not be over; the whole is transcribed again as one.

        A child searching for a word pauses longer than the end-of-turn silence. Words that stop on
        "about", "et", "mit"... wait unfinished_hold_s after the usual end; words that look finished
        wait resume_s after the cue (Whisper may have misheard the last small word). If the child
        goes on meanwhile, it is one turn; if not, the turn is what was said.
        """
        while not stop.is_set():
            verdict = judge(transcript.text, transcript.language or getattr(self.transcriber, "language", None) or "en")
            p = self._last_p()
            sound_open = p is not None and p < self.turn_hold_below
            if verdict.finished and not sound_open:
                # The early end, or end_silence_s (no probe, or a busy CPU made the early transcript
                # too late to end the turn sooner): the same pause, the same doubt. Not after a forced end.
                paused = self.ended is not None and not self.ended.forced
                if not (resume and paused and self.resume_s > 0):
                    break
                wait = self.resume_s
                log.debug("finished (%s) after %s s of silence: the cue, then listening %.1f s more",
                          self.ended.words or verdict.reason, self.ended.silence_s, wait)
                if on_cue is not None:
                    on_cue()
            elif self.unfinished_hold_s > 0:
                wait = self.unfinished_hold_s
                reason = f"the sound's P(complete) {p:.2f}" if verdict.finished else verdict.reason
                log.debug("unfinished (%s): listening %.1f s more", reason, wait)
            else:
                break
            more = self.utterance(frames, stop, announce=False, wait_s=wait, prefix=audio)
            if more is None:
                break
            audio = np.concatenate([audio, more])
            longer, self._ready = self._ready or self._transcribe(audio), None  # the early one read it all
            if not longer.text:
                break
            transcript = longer
        return transcript


def wav_frames(path: str) -> Iterator[np.ndarray]:
    """A recording as 16 kHz mono 512-sample frames, as the microphone would deliver them."""
    import soundfile as sf

    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # noqa: BLE001
        raise ListenError(f"cannot read {path}: {err}") from err
    samples = resample(data.mean(axis=1), rate, SAMPLE_RATE)
    # A recording ends abruptly; the silence a room would give lets the turn end as it would live.
    samples = np.concatenate([samples, np.zeros(int(SAMPLE_RATE * 1.5), dtype=np.float32)])
    for start in range(0, len(samples) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        yield samples[start : start + FRAME_SAMPLES]


def _captured(time_info: Any, frames: int) -> float:
    """When a block's last sample was captured, on time.monotonic: the canceller finds what the speaker played then.

    PortAudio's ADC time says it (a sound server delivers blocks in bursts, up to tens of ms after
    capture); where the host gives none, the moment of delivery.
    """
    now = time.monotonic()
    try:
        adc, current = float(time_info.inputBufferAdcTime), float(time_info.currentTime)
    except (AttributeError, TypeError, ValueError):
        return now
    if adc <= 0.0 or current <= 0.0 or not 0.0 <= current - adc < 1.0:
        return now
    return now - (current - adc) + frames / SAMPLE_RATE


class Microphone:
    """The microphone: a sounddevice input stream whose callback only queues 512-sample frames, stamped.

    read() hands them on with the speaker's echo taken out (echo), on the reader's thread, never
    in PortAudio's callback.
    """

    def __init__(self, device: DeviceRef = None, echo: Optional["EchoCanceller"] = None, far: Any = None):
        self.device = parse_device(device)
        self.echo = echo
        self.far = far  # the canceller's far-end stream (audio.pulse.SpeakerMonitor), opened and closed with this one
        self.frames: queue.Queue = queue.Queue(maxsize=int(30 / FRAME_S))  # 30 s of slack
        self.stream: Any = None
        self._flowing = False  # a frame came since the stream was last opened

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: queue only
        try:
            self.frames.put_nowait((indata[:, 0].copy(), _captured(time_info, frames)))
        except queue.Full:
            pass  # nobody is listening (e.g. the app is speaking): the oldest audio is not needed

    def open(self) -> None:
        """Start capturing; one clear error when there is no usable microphone."""
        try:
            import sounddevice as sd

            self.stream = sd.InputStream(
                samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=FRAME_SAMPLES,
                device=self.device, callback=self._callback,
            )
            self._flowing = False
            self.stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types
            self.stream = None
            raise MicrophoneError(
                f"no usable microphone ({err}); check --list-devices and audio.input_device, or type with --text"
            ) from err
        if self.far is not None:
            try:
                self.far.open()
            except ListenError as err:  # the canceller goes on without it: echo is not taken out, the turn goes on
                log.warning("%s", err)

    def read(self, stop: threading.Event) -> Iterator[np.ndarray]:
        """Frames as they arrive (the echo taken out), until stop is set; a microphone gone quiet raises MicrophoneError."""
        for frame, at in self.read_stamped(stop):
            yield frame if self.echo is None else self.echo.process(frame, at)

    def read_stamped(self, stop: threading.Event) -> Iterator[tuple[np.ndarray, float]]:
        """Raw frames with the time each arrived (the echo check), until stop is set."""
        last, reopened = time.monotonic(), False
        while not stop.is_set():
            try:
                item = self.frames.get(timeout=0.1)
            except queue.Empty:
                # PortAudio delivers a frame every 32 ms; none for seconds means the device is gone.
                if time.monotonic() - last > (STALL_S if self._flowing else START_S):
                    if reopened:
                        raise MicrophoneError("the microphone stopped sending audio (unplugged?)") from None
                    # A sound server's stream sometimes starts and never delivers (seen with PulseAudio
                    # just after it started): open it once more, quietly, before telling the child.
                    log.warning("no audio from the microphone for %.0f s: reopening it", time.monotonic() - last)
                    reopened = True
                    self._reopen_quietly()
                    last = time.monotonic()
                continue
            last, reopened, self._flowing = time.monotonic(), False, True
            yield item

    def _reopen_quietly(self) -> None:
        try:
            self.restart()
        except MicrophoneError:
            pass  # still gone: the next stall reports it

    def restart(self) -> None:
        """Close and open the device again (after it failed); the canceller learns the room again."""
        self.close()
        self.drain()
        if self.echo is not None:
            self.echo.reset()
        self.open()

    def drain(self) -> None:
        """Drop what was heard meanwhile (the app's own voice, in half-duplex); the canceller keeps count."""
        while True:
            try:
                frame, _ = self.frames.get_nowait()
            except queue.Empty:
                return
            if self.echo is not None:
                self.echo.skip(len(frame))

    def close(self) -> None:
        """Stop capturing and release the device (and the far-end stream)."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        if self.far is not None:
            self.far.close()


def create_listener(listen: Any, story_language: str, bus: EventBus) -> Listener:
    """A Listener from the listen settings: Silero VAD + the configured Whisper engine."""
    from audio.stt import create_transcriber
    from audio.vad import SileroScorer

    from audio.turn_model import create_turn_model

    endpoint = EndpointConfig(listen.min_speech_s, listen.end_silence_s, listen.max_utterance_s)
    model = create_turn_model(listen.turn_model) if listen.probe_s > 0 else None
    return Listener(SileroScorer(), create_transcriber(listen, story_language), bus, endpoint,
                    threshold=listen.vad_threshold, noise_margin_db=listen.noise_margin_db,
                    pre_roll_s=listen.pre_roll_s, unfinished_hold_s=listen.unfinished_hold_s, probe_s=listen.probe_s,
                    turn_model=model.complete if model else None, turn_threshold=listen.turn_threshold,
                    turn_hold_below=listen.turn_hold_below, start_margin_db=listen.start_margin_db,
                    resume_s=listen.resume_s)

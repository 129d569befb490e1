"""The listener: audio frames -> voice activity -> one utterance -> Whisper -> what the child said."""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Optional

import numpy as np

from audio.devices import DeviceRef, parse_device, resample
from audio.stt import Transcriber, Transcript
from audio.vad import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE, EndpointConfig, NoiseFloor, Segmenter, Turn, frame_db
from errors import ListenError, MicrophoneError
from events import EventBus, Heard, Listening, NoSpeech, SpeechEnd, SpeechStart

log = logging.getLogger(__name__)

# Seconds without a single frame before the microphone is declared gone.
STALL_S = 2.0
# Silence kept after the last speech frame, so Whisper hears the word end fully.
TAIL_S = 0.2


class Listener:
    """Turns a stream of 32 ms frames into one transcribed turn at a time."""

    def __init__(
        self,
        scorer: Callable[[np.ndarray], float],
        transcriber: Transcriber,
        bus: EventBus,
        endpoint: EndpointConfig,
        threshold: float = 0.5,
        noise_margin_db: float = 6.0,
        pre_roll_s: float = 0.3,
    ):
        self.scorer, self.transcriber, self.bus = scorer, transcriber, bus
        self.endpoint, self.threshold = endpoint, threshold
        self.noise_margin_db, self.pre_roll_s = noise_margin_db, pre_roll_s
        self.noise = NoiseFloor()

    def is_speech(self, frame: np.ndarray) -> bool:
        """Silero says speech, and it stands out of the room's murmur."""
        level = frame_db(frame)
        floor = self.noise.update(level)
        return self.scorer(frame) >= self.threshold and level >= floor + self.noise_margin_db

    def utterance(
        self,
        frames: Iterable[np.ndarray],
        stop: threading.Event,
        on_start: Optional[Callable[[], None]] = None,
        announce: bool = True,
    ) -> Optional[np.ndarray]:
        """Read frames until a whole utterance (with pre-roll) has been heard; None if the input ends first.

        on_start runs the moment speech is confirmed (barge-in stops the speaker there).
        announce: emit `listening` (off while the app speaks: the robot's face shows speaking).
        """
        seg = Segmenter(self.endpoint)
        keep = int((self.pre_roll_s + self.endpoint.min_speech_s + self.endpoint.end_silence_s) / FRAME_S) + 2
        recent: collections.deque = collections.deque(maxlen=keep)  # frames before the turn is confirmed
        taken: list[np.ndarray] = []
        start_index = 0
        if announce:
            self.bus.emit(Listening())
        for i, frame in enumerate(frames):
            if stop.is_set():
                return None
            event = seg.process(FRAME_S, self.is_speech(frame))
            if seg.speaking or event is Turn.END:
                taken.append(frame)
            else:
                recent.append((i, frame))
            if event is Turn.START:
                first = round(seg.speech_start / FRAME_S) - round(self.pre_roll_s / FRAME_S)
                taken = [f for j, f in recent if j >= first] + taken
                start_index = first
                self.bus.emit(SpeechStart())
                if on_start:
                    on_start()
            elif event is Turn.END:
                silence = 0 if seg.forced else int((self.endpoint.end_silence_s - TAIL_S) / FRAME_S)
                self.bus.emit(SpeechEnd(forced=seg.forced))
                log.debug("utterance: frames %d-%d", start_index, i)
                return np.concatenate(taken[: len(taken) - silence] if silence else taken)
        if seg.speaking:  # the recording ended mid-sentence
            self.bus.emit(SpeechEnd(forced=True))
            return np.concatenate(taken)
        return None

    def listen(
        self,
        frames: Iterable[np.ndarray],
        stop: threading.Event,
        on_start: Optional[Callable[[], None]] = None,
        max_seconds: Optional[float] = None,
        announce: bool = True,
    ) -> Optional[Transcript]:
        """One turn: wait for speech, transcribe it; None when the input ended with no speech.

        max_seconds: utterances longer than this are not transcribed (used while the app speaks,
        where only a short stop word matters and Whisper would compete with the model for the CPU).
        """
        frames = iter(frames)
        while not stop.is_set():
            audio = self.utterance(frames, stop, on_start, announce)
            if audio is None:
                if not stop.is_set():
                    self.bus.emit(NoSpeech())
                return None
            if max_seconds is not None and len(audio) > max_seconds * SAMPLE_RATE:
                continue
            try:
                transcript = self.transcriber.transcribe(audio)
            except ListenError:
                raise
            except Exception as err:  # noqa: BLE001
                raise ListenError(f"transcription failed: {err}") from err
            if transcript.text:
                self.bus.emit(Heard(text=transcript.text, language=transcript.language,
                                    duration=round(transcript.duration, 3)))
                return transcript
            log.debug("speech with no words (dropped %d segments); listening on", transcript.dropped)
        return None


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


class Microphone:
    """The microphone: a sounddevice input stream whose callback only queues 512-sample frames."""

    def __init__(self, device: DeviceRef = None):
        self.device = parse_device(device)
        self.frames: queue.Queue = queue.Queue(maxsize=int(30 / FRAME_S))  # 30 s of slack
        self.stream: Any = None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: queue only
        try:
            self.frames.put_nowait(indata[:, 0].copy())
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
            self.stream.start()
        except Exception as err:  # noqa: BLE001 - PortAudio raises several types
            self.stream = None
            raise MicrophoneError(
                f"no usable microphone ({err}); check --list-devices and audio.input_device, or type with --text"
            ) from err

    def read(self, stop: threading.Event) -> Iterator[np.ndarray]:
        """Frames as they arrive, until stop is set; a microphone gone quiet raises MicrophoneError."""
        last = time.monotonic()
        while not stop.is_set():
            try:
                frame = self.frames.get(timeout=0.1)
            except queue.Empty:
                # PortAudio delivers a frame every 32 ms; none for seconds means the device is gone.
                if time.monotonic() - last > STALL_S:
                    raise MicrophoneError("the microphone stopped sending audio (unplugged?)") from None
                continue
            last = time.monotonic()
            yield frame

    def restart(self) -> None:
        """Close and open the device again (after it failed)."""
        self.close()
        self.drain()
        self.open()

    def drain(self) -> None:
        """Drop what was heard meanwhile (the app's own voice, in half-duplex)."""
        while True:
            try:
                self.frames.get_nowait()
            except queue.Empty:
                return

    def close(self) -> None:
        """Stop capturing and release the device."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def create_listener(listen: Any, story_language: str, bus: EventBus) -> Listener:
    """A Listener from the listen settings: Silero VAD + the configured Whisper engine."""
    from audio.stt import create_transcriber
    from audio.vad import SileroScorer

    endpoint = EndpointConfig(listen.min_speech_s, listen.end_silence_s, listen.max_utterance_s)
    return Listener(SileroScorer(), create_transcriber(listen, story_language), bus, endpoint,
                    threshold=listen.vad_threshold, noise_margin_db=listen.noise_margin_db,
                    pre_roll_s=listen.pre_roll_s)

"""Voice activity: Silero scoring, a room noise-floor tracker, and the pure time-based end-of-turn segmenter."""

from __future__ import annotations

import collections
import math
import os
from dataclasses import dataclass
from enum import Enum
from typing import Optional

import numpy as np

from errors import ListenError

SAMPLE_RATE = 16000  # Hz: what Silero VAD and Whisper take
FRAME_SAMPLES = 512  # Silero's window at 16 kHz
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s


class SileroScorer:
    """Speech probability of each 32 ms frame, by the Silero VAD model that ships in the silero-vad package."""

    def __init__(self) -> None:
        # onnxruntime reads this once, at import: without it every session queues a telemetry event
        # on disk (main.py switches every library off; this covers the benchmarks and other callers).
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        try:
            import torch
            from silero_vad import load_silero_vad

            self._torch = torch
            # The ONNX build runs on onnxruntime in ~0.4 ms a frame here, with no torch JIT warm-up.
            self.model = load_silero_vad(onnx=True)
        except Exception as err:  # noqa: BLE001 - import and model errors alike
            raise ListenError(f"cannot load Silero VAD ({err}); pip install silero-vad onnxruntime") from err

    def __call__(self, frame: np.ndarray) -> float:
        """Probability that this 512-sample frame holds speech."""
        return float(self.model(self._torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)), SAMPLE_RATE))

    def reset(self) -> None:
        """Forget the recurrent state (a new recording)."""
        self.model.reset_states()


def frame_db(frame: np.ndarray) -> float:
    """RMS level of a frame in dB full scale."""
    rms = float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) if len(frame) else 0.0
    return 20 * math.log10(max(rms, 1e-6))


class NoiseFloor:
    """The room's background level: a low percentile of the last few seconds of frame levels (dB full scale).

    Silero hears murmuring classmates as speech too; requiring the child's voice to stand
    `margin_db` above this floor is what lets a turn end when the child stops, not when the room
    does. A percentile of every frame (the child's included) follows a noisy room within seconds,
    and a child's own pauses between words keep it below their voice.
    """

    def __init__(self, window_s: float = 4.0, percentile: float = 20.0, min_db: float = -70.0):
        self.levels: collections.deque = collections.deque(maxlen=max(1, round(window_s / FRAME_S)))
        self.percentile, self.min_db = percentile, min_db
        self.floor_db: Optional[float] = None

    def update(self, level_db: float) -> float:
        """Feed every frame's level; returns the new floor."""
        self.levels.append(level_db)
        self.floor_db = max(float(np.percentile(self.levels, self.percentile)), self.min_db)
        return self.floor_db

    def reset(self) -> None:
        """Forget the room (a new recording)."""
        self.levels.clear()
        self.floor_db = None


class SpeechEdge(Enum):
    """An edge of the child's speech, found on a frame; whether the turn ends there is the listener's call."""

    START = "start"  # the child started speaking (confirmed after min_speech_s)
    END = "end"  # the child stopped (trailing silence) or the utterance hit max_utterance_s


@dataclass(frozen=True)
class EndpointConfig:
    """Endpointing settings (seconds); see config.yaml for how they were tuned."""

    min_speech_s: float = 0.25
    end_silence_s: float = 0.8
    max_utterance_s: float = 15.0
    # Once silence has begun, speech must last this long to count again: a classmate's loud
    # syllable in the murmur must not keep the turn open.
    resume_s: float = 0.1


class Segmenter:
    """Pure speech-edge decision: `process(seconds, is_speech)` per frame -> SpeechEdge.START / END / None."""

    def __init__(self, config: EndpointConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Back to waiting for speech."""
        self.t = 0.0  # seconds processed so far
        self.speaking = False
        self.speech_start: Optional[float] = None  # time of the first speech frame of a candidate
        self.speech_s = 0.0  # speech time in the candidate or turn
        self.silence_s = 0.0  # trailing silence
        self.resume = 0.0  # speech heard inside a trailing silence
        self.forced = False  # the last END came from max_utterance_s

    def end_now(self) -> SpeechEdge:
        """End the turn at once (the words already say it is finished); back to waiting for speech."""
        self.speaking, self.forced = False, False
        self.speech_start, self.speech_s, self.silence_s, self.resume = None, 0.0, 0.0, 0.0
        return SpeechEdge.END

    def process(self, seconds: float, is_speech: bool) -> Optional[SpeechEdge]:
        """Advance by one frame; say when speech starts or ends."""
        start_of_frame = self.t
        self.t += seconds
        if is_speech and self.silence_s > 0 and self.resume + seconds < self.config.resume_s:
            self.resume += seconds  # too short so far to end the silence
            self.silence_s += seconds
        elif is_speech:
            if self.speech_start is None:
                self.speech_start = start_of_frame
            self.speech_s += seconds + self.resume
            self.silence_s = self.resume = 0.0
        elif self.speech_start is not None:
            self.silence_s += seconds
            self.resume = 0.0
        if not self.speaking:
            if self.speech_start is None:
                return None
            if self.silence_s >= self.config.end_silence_s:  # a cough or a bump: forget it
                self.speech_start, self.speech_s, self.silence_s, self.resume = None, 0.0, 0.0, 0.0
                return None
            if self.speech_s >= self.config.min_speech_s:
                self.speaking = True
                return SpeechEdge.START
            return None
        self.forced = self.t - self.speech_start >= self.config.max_utterance_s
        if self.silence_s >= self.config.end_silence_s or self.forced:
            self.speaking = False
            self.speech_start, self.speech_s, self.silence_s, self.resume = None, 0.0, 0.0, 0.0
            return SpeechEdge.END
        return None

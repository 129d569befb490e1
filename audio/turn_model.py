"""The sound's side of the end-of-turn decision: Smart Turn v3.2, P(the speaker has finished) from the audio.

Smart Turn (Daily, BSD-2) is a Whisper-tiny encoder with a small head, trained on en, fr, de and
20 more languages, that hears intonation and trailing-off where a transcript cannot ("a little
fox..." said as the start of a list). It ships inside the pipecat-ai wheel, installed with
--no-deps; pipecat itself is never imported (its __init__ needs loguru), only its model file read.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np

from errors import ListenError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
WINDOW_S = 8  # the model reads the last 8 s, zero-padded on the left
PACKAGE, MODEL_FILE = "pipecat-ai", "smart-turn-v3.2-cpu.onnx"
INSTALL = "pip install --no-deps pipecat-ai==1.14.0"


def packaged_model() -> Path:
    """The Smart Turn ONNX file inside the installed pipecat-ai wheel."""
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if f.name == MODEL_FILE:
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    raise ListenError(f"the end-of-turn model {MODEL_FILE} is not installed: {INSTALL} (or set listen.turn_model: off)")


class TurnModel:
    """P(complete) for the audio of a turn so far; about 50-110 ms a call on one CPU thread."""

    def __init__(self, path: Optional[Path] = None, threads: int = 1):
        try:
            import onnxruntime as ort
            from faster_whisper.feature_extractor import FeatureExtractor

            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
            self.session = ort.InferenceSession(str(path or packaged_model()), sess_options=so,
                                                providers=["CPUExecutionProvider"])
        except ListenError:
            raise
        except Exception as err:  # noqa: BLE001 - onnxruntime raises several types for a bad file
            raise ListenError(f"cannot load the end-of-turn model ({err}); {INSTALL}, or listen.turn_model: off") from err
        # The same log-mel as transformers' WhisperFeatureExtractor(chunk_length=8), which Smart Turn was
        # trained on (matches pipecat's own to 2e-7), from faster-whisper, which the app already has.
        self.features = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)
        self.last_s = 0.0  # seconds the last call took (turn_end reports it)

    def complete(self, audio: np.ndarray) -> float:
        """Probability that the speech in audio (16 kHz mono, ending now) is a finished turn."""
        start = time.perf_counter()
        n = WINDOW_S * SAMPLE_RATE
        x = np.asarray(audio, dtype=np.float32)[-n:]
        x = np.pad(x, (n - len(x), 0))
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)  # do_normalize=True, over the padded window
        mel = self.features(x, padding=0)[:, : WINDOW_S * 100].astype(np.float32)
        p = float(self.session.run(None, {"input_features": mel[None]})[0].reshape(-1)[0])
        self.last_s = time.perf_counter() - start
        return p


def create_turn_model(name: str) -> Optional[TurnModel]:
    """The configured end-of-turn model: "smart-turn" (the packaged v3.2), a path to an .onnx, or "off"."""
    if name in ("off", "", None):
        return None
    if name == "smart-turn":
        return TurnModel()
    path = Path(name).expanduser()
    if not path.is_file():
        raise ListenError(f"listen.turn_model: {name} is neither smart-turn, off, nor an .onnx file")
    return TurnModel(path)

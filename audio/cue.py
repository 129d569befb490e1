"""The listening cue: a soft two-note "mm-hm" the moment a child seems to have finished.

It is the first thing a child hears back, the moment the words look finished, while the
listener waits a little longer in case they were only looking for a word (audio/listen.py,
`listen.resume_s`). Tones, not words: it needs no voice, sounds the same in every language, and
is not speech to the voice activity detector when the speaker leaks into the microphone.
"""

from __future__ import annotations

import numpy as np

from audio.tts import Audio

# Two notes a fifth apart, rising (a questioning "mm-hm?"), each struck and fading like a marimba.
NOTES_HZ = (587.3, 880.0)  # D5, A5
NOTE_S = 0.09
PEAK = 0.3  # about -10 dBFS: heard over a classroom, softer than the voice that follows


def listening_cue(sample_rate: int) -> Audio:
    """The cue's samples at this rate (the voice's, so the output stream is not reopened for it)."""
    n = int(sample_rate * NOTE_S)
    t = np.arange(n) / sample_rate
    attack = np.minimum(1.0, t / 0.005)  # 5 ms: no click at the start
    decay = np.exp(-t / 0.035)
    release = np.minimum(1.0, (NOTE_S - t) / 0.01)  # and none at the end
    notes = []
    for hz in NOTES_HZ:
        tone = np.sin(2 * np.pi * hz * t) + 0.25 * np.sin(4 * np.pi * hz * t)  # a soft second harmonic
        notes.append(tone * attack * decay * release)
    samples = np.concatenate(notes)
    return Audio((PEAK * samples / np.abs(samples).max()).astype(np.float32), sample_rate)

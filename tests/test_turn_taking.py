"""The end of a turn decided by sound and words: a pause after finished words ends it early, an open word keeps it open.

A loud frame is speech (a scripted scorer) and the transcriber is scripted, so the decisions are
tested without timing: frames are fed a little slower than the early transcript takes.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from audio.listen import Listener
from audio.stt import Transcript
from audio.vad import FRAME_S, FRAME_SAMPLES, EndpointConfig
from events import EventBus, SpeechEnd

LOUD, QUIET = np.full(FRAME_SAMPLES, 0.5, np.float32), np.zeros(FRAME_SAMPLES, np.float32)


class Scripted:
    """Words by how much speech the audio holds: each (seconds, text) pair applies from that length on."""

    language = "en"

    def __init__(self, by_length: list[tuple[float, str]]):
        self.by_length, self.calls = by_length, []

    def transcribe(self, samples):
        seconds = len(samples) / 16000
        self.calls.append(round(seconds, 2))
        text = [t for s, t in self.by_length if seconds >= s][-1]
        return Transcript(text, "en", seconds, 0.01)


def frames(*parts: tuple[float, np.ndarray], pace_s: float = 0.004):
    """(seconds, frame) runs as the microphone would give them, a little slower than a scripted transcript."""
    for seconds, frame in parts:
        for _ in range(round(seconds / FRAME_S)):
            time.sleep(pace_s)
            yield frame


def listener(transcriber, hold=1.7, probe=0.25, **kwargs):
    bus, records = EventBus(), []
    bus.subscribe(records.append)
    scorer = lambda f: float(np.abs(f).max() > 0.1)  # noqa: E731
    return Listener(scorer, transcriber, bus, EndpointConfig(0.25, 0.8, 15.0), noise_margin_db=0.0,
                    pre_roll_s=0.1, unfinished_hold_s=hold, probe_s=probe, **kwargs), records


def test_finished_words_end_the_turn_at_the_first_pause_with_the_transcript_ready():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    ear, records = listener(stt)
    counted = []
    source = frames((0.5, QUIET), (1.5, LOUD), (3.0, QUIET))

    def counting():
        for f in source:
            counted.append(f)
            yield f

    heard = ear.listen(counting(), threading.Event())
    assert heard.text == "Tell me a story about a dragon."
    end = next(e for e in records if isinstance(e, SpeechEnd))
    assert end.words == "ends on 'dragon'" and 0.25 <= end.silence_s < 0.8, end
    assert len(stt.calls) == 1  # the early transcript is the turn's: no second pass
    waited = len(counted) * FRAME_S - 2.0
    assert waited < 0.8, waited  # before end_silence_s: the point of it


def test_an_open_word_keeps_the_turn_open_for_the_rest():
    stt = Scripted([(0.0, "Tell me a story about"), (2.5, "Tell me a story about a dragon who loves cake.")])
    ear, records = listener(stt)
    heard = ear.listen(frames((0.5, QUIET), (1.2, LOUD), (1.3, QUIET), (1.0, LOUD), (2.0, QUIET)), threading.Event())
    assert heard.text == "Tell me a story about a dragon who loves cake."
    ends = [e for e in records if isinstance(e, SpeechEnd)]
    # Not ended on "about" (the usual silence, then the hold); the rest ended early on its finished words,
    # its early transcript reading the whole request (no pass after it).
    assert [e.words for e in ends] == ["", "ends on 'cake'"], ends
    assert stt.calls[-1] >= 2.5 and len(stt.calls) <= 3, stt.calls


def test_speech_that_resumes_drops_the_early_transcript():
    """The early words come back only after the child went on: they are dropped, the whole turn is transcribed."""
    gate = threading.Event()

    class Slow(Scripted):
        def transcribe(self, samples):
            if not self.calls:
                gate.wait(5)  # the first (early) transcript is slow: it returns after speech resumed
            return super().transcribe(samples)

    stt = Slow([(0.0, "A story."), (1.5, "A story with a fox and a bear.")])
    ear, records = listener(stt, hold=0.0)

    def mic():
        yield from frames((0.3, QUIET), (0.7, LOUD), (0.4, QUIET))
        gate.set()
        yield from frames((1.0, LOUD), (2.0, QUIET))

    heard = ear.listen(mic(), threading.Event())
    assert heard.text == "A story with a fox and a bear.", (heard, stt.calls)
    assert len(stt.calls) >= 2 and stt.calls[-1] > 1.5


def test_without_the_probe_the_turn_ends_at_the_usual_silence():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    ear, records = listener(stt, probe=0.0)
    heard = ear.listen(frames((0.5, QUIET), (1.5, LOUD), (3.0, QUIET), pace_s=0.0), threading.Event())
    assert heard.text == "Tell me a story about a dragon." and len(stt.calls) == 1
    end = next(e for e in records if isinstance(e, SpeechEnd))
    assert end.silence_s == 0.8 and end.words == ""


# --- the sound's say (audio/turn_model.py), with a scripted turn model; inline: decisions in audio time ---

class SoundSays:
    """P(complete) by the length of the trailing silence in what it is given (a scripted turn model)."""

    def __init__(self, by_silence: list[tuple[float, float]]):
        self.by_silence, self.calls = by_silence, []

    def __call__(self, audio):
        quiet = 0
        for frame in reversed(np.asarray(audio).reshape(-1, FRAME_SAMPLES)):
            if np.abs(frame).max() > 0.1:
                break
            quiet += 1
        silence_s = quiet * FRAME_S
        self.calls.append(round(silence_s, 2))
        return [p for s, p in self.by_silence if silence_s >= s][-1]


def turn_end_s(ear, parts, **kwargs) -> tuple[float, dict]:
    """Seconds of silence read after the speech when the turn was declared, and what was heard (kwargs: listen()'s)."""
    counted = []

    def counting():
        for f in frames(*parts, pace_s=0.0):
            counted.append(f)
            yield f

    heard = ear.listen(counting(), threading.Event(), **kwargs)
    assert heard is not None
    speech_s = sum(s for s, f in parts[:2])
    return len(counted) * FRAME_S - speech_s, heard


def test_the_sound_postpones_an_early_end_it_hears_as_unfinished_and_is_asked_again():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    sound = SoundSays([(0.0, 0.2), (0.5, 0.9)])
    ear, records = listener(stt, turn_model=sound, turn_threshold=0.5, inline=True)
    waited, heard = turn_end_s(ear, ((0.5, QUIET), (1.5, LOUD), (3.0, QUIET)))
    end = next(e for e in records if isinstance(e, SpeechEnd))
    assert heard.text == "Tell me a story about a dragon." and end.turn_p == 0.9, end
    assert 0.5 <= end.silence_s < 0.8 and 0.5 <= waited < 0.8, (end, waited)  # later than the probe, before 0.8 s
    assert len(sound.calls) >= 2 and sound.calls == sorted(sound.calls)  # re-scored as the pause grew


def test_the_sound_never_holds_a_turn_past_end_silence():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    ear, records = listener(stt, turn_model=SoundSays([(0.0, 0.1)]), turn_threshold=0.5, inline=True)
    waited, _ = turn_end_s(ear, ((0.5, QUIET), (1.5, LOUD), (3.0, QUIET)))
    end = next(e for e in records if isinstance(e, SpeechEnd))
    assert end.silence_s == 0.8 and end.turn_p == 0.1 and 0.8 <= waited < 0.9, (end, waited)


def test_a_zero_threshold_reports_the_sound_without_letting_it_decide():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    ear, records = listener(stt, turn_model=SoundSays([(0.0, 0.1)]), turn_threshold=0.0, inline=True)
    waited, _ = turn_end_s(ear, ((0.5, QUIET), (1.5, LOUD), (3.0, QUIET)))
    end = next(e for e in records if isinstance(e, SpeechEnd))
    assert end.turn_p == 0.1 and end.words == "ends on 'dragon'" and waited < 0.4, (end, waited)


def test_open_words_keep_the_turn_open_whatever_the_sound_says():
    stt = Scripted([(0.0, "Tell me a story about"), (2.5, "Tell me a story about a dragon who loves cake.")])
    ear, records = listener(stt, turn_model=SoundSays([(0.0, 0.99)]), turn_threshold=0.5, inline=True)
    heard = ear.listen(frames((0.5, QUIET), (1.2, LOUD), (1.3, QUIET), (1.0, LOUD), (2.0, QUIET), pace_s=0.0),
                       threading.Event())
    assert heard.text == "Tell me a story about a dragon who loves cake."


def test_the_sound_can_hold_finished_words_said_as_if_more_were_coming():
    """turn_hold_below: P(complete) still under it at end_silence_s holds the turn as an open word does."""
    stt = Scripted([(0.0, "Tell me a story about a fox."), (2.5, "Tell me a story about a fox who lost his hat.")])
    sound = SoundSays([(0.0, 0.05)])
    ear, records = listener(stt, turn_model=sound, turn_threshold=0.5, turn_hold_below=0.1, inline=True)
    heard = ear.listen(frames((0.5, QUIET), (1.2, LOUD), (1.3, QUIET), (1.0, LOUD), (2.0, QUIET), pace_s=0.0),
                       threading.Event())
    assert heard.text == "Tell me a story about a fox who lost his hat."
    plain, _ = listener(Scripted([(0.0, "Tell me a story about a fox."), (2.5, "more")]), turn_model=SoundSays([(0.0, 0.05)]),
                        turn_threshold=0.5, inline=True)
    cut = plain.listen(frames((0.5, QUIET), (1.2, LOUD), (1.3, QUIET), (1.0, LOUD), (2.0, QUIET), pace_s=0.0),
                       threading.Event())
    assert cut.text == "Tell me a story about a fox."  # the control: without the hold, cut at the pause


def test_turn_end_says_how_the_listener_ended_the_turn():
    """The transcript carries its speech_end to the turn: turn_end reports the silence, the words and the sound."""
    from llm.storyteller import Storyteller
    from pipeline import Session
    from turn import Heard, Stages
    from tests.fakes import ScriptedBackend

    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    ear, records = listener(stt, turn_model=SoundSays([(0.0, 0.8)]), turn_threshold=0.5, inline=True)
    heard = ear.listen(frames((0.5, QUIET), (1.5, LOUD), (3.0, QUIET), pace_s=0.0), threading.Event())
    assert isinstance(heard.ended, SpeechEnd) and heard.ended.turn_p == 0.8 and heard.ended.words == "ends on 'dragon'"
    bus, ends = EventBus(), []
    bus.subscribe(ends.append)
    teller = Storyteller(ScriptedBackend([["A dragon flew."]]), "Early Elementary", "en", memory_tokens=2000, max_sentence_words=30)
    end = Session(Stages(teller, bus, show=lambda _: None)).run_turn(Heard.spoken(heard))
    assert (end.end_silence_s, end.end_words, end.end_turn_p) == (heard.ended.silence_s, "ends on 'dragon'", 0.8)
    typed = Session(Stages(Storyteller(ScriptedBackend([["A cat sat."]]), "Early Elementary", "en", memory_tokens=2000,
                                       max_sentence_words=30), bus, show=lambda _: None)).run_turn("Tell me about a cat")
    assert (typed.end_silence_s, typed.end_words, typed.end_turn_p) == (None, "", None)


# --- the listening cue and resume_s: finished words are not proof (Whisper mishears the last small word) ---

def test_a_child_who_goes_on_after_the_cue_is_heard_as_one_turn():
    """"Tell me a story about the..." heard as "...about me." ends early: the cue plays, the child goes on, one turn."""
    stt = Scripted([(0.0, "Tell me a story about me."), (2.5, "Tell me a story about the biggest tree.")])
    ear, records = listener(stt, resume_s=1.3, inline=True)
    cues = []
    heard = ear.listen(frames((0.5, QUIET), (1.2, LOUD), (1.2, QUIET), (1.0, LOUD), (3.0, QUIET), pace_s=0.0),
                       threading.Event(), on_cue=lambda: cues.append(len(cues)))
    assert heard.text == "Tell me a story about the biggest tree."
    ends = [e for e in records if isinstance(e, SpeechEnd)]
    assert [e.words for e in ends] == ["ends on 'me'", "ends on 'tree'"], ends
    assert len(cues) == 2  # at each early end: the child hears at once that they were heard


def test_after_the_cue_silence_answers_the_turn_resume_s_later_and_an_answer_is_not_held():
    stt = Scripted([(0.0, "Tell me a story about a dragon.")])
    parts = ((0.5, QUIET), (1.5, LOUD), (4.0, QUIET))
    ear, _ = listener(stt, resume_s=1.3, inline=True)
    cues = []
    waited, heard = turn_end_s(ear, parts, on_cue=lambda: cues.append(1))
    assert heard.text == "Tell me a story about a dragon." and cues == [1]
    assert 0.25 + 1.3 <= waited < 0.25 + 1.3 + 0.2, waited  # the probe, then resume_s, then answered
    cues.clear()
    waited, heard = turn_end_s(ear, parts, on_cue=lambda: cues.append(1), resume=False)
    assert heard.text == "Tell me a story about a dragon." and cues == [] and waited < 0.4, waited  # "Yes." ends at once
    plain, _ = listener(stt, inline=True)  # resume_s 0: as before, no cue, answered at the early end
    waited, _ = turn_end_s(plain, parts, on_cue=lambda: cues.append(1))
    assert cues == [] and waited < 0.4, waited


def test_an_early_transcript_too_late_for_an_early_end_still_gets_the_cue_and_the_resume_window():
    """On a busy CPU the early transcript may come back only after end_silence_s: the turn ends there, on finished
    words that are no more proof than at an early end, so the child who goes on is still heard as one turn."""

    class Busy(Scripted):
        def transcribe(self, samples):
            time.sleep(0.3)  # 75 frames at 4 ms each: 2.4 s of audio, past end_silence_s (0.8 s)
            return super().transcribe(samples)

    stt = Busy([(0.0, "Tell me a story about me."), (2.5, "Tell me a story about the biggest tree.")])
    ear, records = listener(stt, resume_s=1.3)
    cues = []
    heard = ear.listen(frames((0.5, QUIET), (1.2, LOUD), (1.5, QUIET), (1.0, LOUD), (3.0, QUIET)),
                       threading.Event(), on_cue=lambda: cues.append(1))
    assert heard.text == "Tell me a story about the biggest tree."
    first = next(e for e in records if isinstance(e, SpeechEnd))
    assert first.silence_s == 0.8 and first.words == "", first  # not ended early: the transcript was too late
    assert cues and len(cues) <= 2


def test_a_short_stop_word_over_the_app_is_heard_but_only_min_speech_s_confirms_a_barge_in():
    # While the app speaks the listener watches for "stop", which a child says in about 0.2 s of
    # loud voice, under min_speech_s (0.25 s): such speech is transcribed, but barge-in (on_start)
    # and speech_start wait for min_speech_s, so a blip of the echo or the murmur stops nothing.
    stt = Scripted([(0.0, "Stop!")])
    ear, records = listener(stt, probe=0.0)
    started = []
    short = frames((0.3, QUIET), (0.16, LOUD), (1.5, QUIET))
    heard = ear.listen(short, threading.Event(), on_start=lambda: started.append(1), announce=False, short_s=0.12)
    assert heard is not None and heard.text == "Stop!"
    assert not started and not [e for e in records if type(e).__name__ in ("SpeechStart", "SpeechEnd")]
    # Without short_s the same 0.16 s is a bump, as between turns.
    ear, records = listener(Scripted([(0.0, "Stop!")]), probe=0.0)
    assert ear.listen(frames((0.3, QUIET), (0.16, LOUD), (1.5, QUIET)), threading.Event(), announce=False) is None
    # Longer speech with short_s: confirmed once, at min_speech_s, as any other.
    ear, records = listener(Scripted([(0.0, "Make it a pirate!")]), probe=0.0)
    long = frames((0.3, QUIET), (1.0, LOUD), (1.5, QUIET))
    heard = ear.listen(long, threading.Event(), on_start=lambda: started.append(1), announce=False, short_s=0.12)
    assert heard.text == "Make it a pirate!" and started == [1]
    assert [type(e).__name__ for e in records if type(e).__name__ in ("SpeechStart", "SpeechEnd")] == ["SpeechStart", "SpeechEnd"]

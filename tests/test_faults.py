"""Faults injected into each stage: the child hears a kind line, an error event is sent, the next turn works."""

import threading
import time

import numpy as np
import pytest

from audio.listen import Listener
from audio.speak import Speaker
from audio.stt import Transcript
from audio.tts import Audio
from audio.vad import FRAME_SAMPLES, EndpointConfig
from events import ErrorEvent, EventBus, TurnEnd
from llm.storyteller import Storyteller
from pipeline import Session
import lang
from turn import Stages
from tests.fakes import ScriptedBackend

SPEECH, QUIET = np.full(FRAME_SAMPLES, 0.3, np.float32), np.zeros(FRAME_SAMPLES, np.float32)


class FakeMic:
    """The microphone, scripted: one turn of 'speech' (1 s between seconds of silence) at a time.

    Like a child waiting for the answer, the next turn's audio arrives only once the app is
    listening again (after drain(), which the voice loop calls when a turn is over); when every
    turn has been heard the session's stop event is set.
    """

    def __init__(self, turns: int, stop: threading.Event):
        self.turns = [[QUIET] * 31 + [SPEECH] * 31 + [QUIET] * 31 for _ in range(turns)]
        self.current: list = self.turns.pop(0)
        self.stop, self.finished = stop, False

    def read(self, until):
        while not until.is_set():
            if self.current:
                yield self.current.pop(0)
            elif self.finished:
                self.stop.set()
                return
            else:
                time.sleep(0.005)  # nothing said until the app listens again

    def drain(self):
        if self.turns:
            self.current = self.turns.pop(0)
        else:
            self.finished = True


class FlakyTranscriber:
    """Whisper stand-in: fails on the given calls, else hears a fixed request."""

    def __init__(self, fail_on=()):
        self.calls, self.fail_on = 0, set(fail_on)

    def transcribe(self, samples):
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError("whisper crashed")
        return Transcript("Tell me a story", "en", len(samples) / 16000, 0.01)


class FlakySynth:
    """A voice that fails on one sentence."""

    def __init__(self, fail_text):
        self.fail_text, self.spoken = fail_text, []

    def synthesize(self, text):
        if text == self.fail_text:
            raise RuntimeError("voice crashed")
        self.spoken.append(text)
        return Audio(np.zeros(160, np.float32), 16000)

    def voices(self):
        return []


def make_session(replies, synth, transcriber, bus):
    # Loud frames are speech to this scorer; the noise floor then keeps quiet frames out.
    listener = Listener(lambda f: float(np.abs(f).max() > 0.1), transcriber, bus, EndpointConfig(0.25, 0.5, 15.0))
    speaker = Speaker(synth, bus, recorder=None, output=None).start()
    teller = Storyteller(ScriptedBackend(replies), "Early Elementary", "en", 800, 30)
    return Session(Stages(teller, bus, show=lambda text: None, speaker=speaker)), listener, speaker


def run(session, listener, turns):
    stop = threading.Event()
    session.run_voice(listener, FakeMic(turns, stop), stop)


def events_of(bus):
    log = []
    bus.subscribe(log.append)
    return log


def test_transcriber_failure_is_apologised_for_and_the_next_turn_works():
    bus = EventBus()
    log = events_of(bus)
    synth = FlakySynth(fail_text=None)
    session, listener, speaker = make_session([["Once upon a time."]], synth, FlakyTranscriber(fail_on={1}), bus)
    run(session, listener, turns=2)
    speaker.close()
    assert [e.stage for e in log if isinstance(e, ErrorEvent)] == ["listen"]
    assert synth.spoken[0] == lang.get("en").sorry
    assert "Once upon a time." in synth.spoken  # the second turn was answered


def test_model_failure_mid_story_is_apologised_for_and_the_next_turn_works():
    class Broken(ScriptedBackend):
        def stream(self, messages, cancel):
            if len(self.prompts) == 0:
                self.prompts.append(messages)
                yield "The fox ran. "
                raise RuntimeError("CUDA out of memory")
            yield from super().stream(messages, cancel)

    bus = EventBus()
    log = events_of(bus)
    synth = FlakySynth(fail_text=None)
    session, listener, speaker = make_session([], synth, FlakyTranscriber(), bus)
    session.storyteller.backend = Broken([["The end."]])
    run(session, listener, turns=2)
    speaker.close()
    assert [e.stage for e in log if isinstance(e, ErrorEvent)] == ["llm"]
    assert lang.get("en").sorry in synth.spoken and synth.spoken[-1] == "The end."


def test_voice_failure_skips_one_sentence_and_the_story_goes_on():
    bus = EventBus()
    log = events_of(bus)
    synth = FlakySynth(fail_text="Two.")
    session, listener, speaker = make_session([["One. ", "Two. ", "Three."]], synth, FlakyTranscriber(), bus)
    run(session, listener, turns=1)
    speaker.close()
    assert [e.stage for e in log if isinstance(e, ErrorEvent)] == ["tts"]
    assert synth.spoken[-2:] == ["One.", "Three."]
    assert any(isinstance(e, TurnEnd) for e in log)


@pytest.mark.integration
def test_microphone_failure_is_apologised_for_once_and_the_device_reopened():
    from errors import MicrophoneError

    class DyingMic(FakeMic):
        def __init__(self, stop):
            super().__init__(turns=1, stop=stop)
            self.failures, self.restarts = 2, 0

        def read(self, stop):
            if self.failures:
                self.failures -= 1
                raise MicrophoneError("the microphone stopped sending audio (unplugged?)")
            yield from super().read(stop)

        def restart(self):
            self.restarts += 1

    bus = EventBus()
    log = events_of(bus)
    synth = FlakySynth(fail_text=None)
    session, listener, speaker = make_session([["Once upon a time."]], synth, FlakyTranscriber(), bus)
    stop = threading.Event()
    mic = DyingMic(stop)
    session.run_voice(listener, mic, stop)
    speaker.close()
    assert [e.stage for e in log if isinstance(e, ErrorEvent)] == ["microphone", "microphone"]
    assert mic.restarts == 2
    assert synth.spoken.count(lang.get("en").sorry) == 1  # said once, not at every retry
    assert synth.spoken[-1] == "Once upon a time."  # and the child's turn after it was answered


def test_a_microphone_that_never_delivers_is_reopened_once_before_it_is_reported(monkeypatch):
    """A stream that starts and sends nothing (PulseAudio just after start-up) gets one quiet reopen."""
    import audio.listen as listen_module
    from audio.listen import Microphone
    from errors import MicrophoneError

    monkeypatch.setattr(listen_module, "STALL_S", 0.2)
    monkeypatch.setattr(listen_module, "START_S", 0.2)
    opened = []

    class Mute(Microphone):
        def open(self):
            opened.append(1)
            if len(opened) == 2:  # the reopened stream works
                for _ in range(3):
                    self.frames.put_nowait((np.zeros(512, np.float32), time.monotonic()))

        def close(self):
            pass

    mic = Mute()
    mic.open()
    got = []
    for frame in mic.read(threading.Event()):
        got.append(frame)
        if len(got) == 3:
            break
    assert len(got) == 3 and len(opened) == 2
    dead = Mute()
    opened.clear()
    opened.append(1)
    opened.append(1)  # every further open delivers nothing
    with pytest.raises(MicrophoneError, match="stopped sending audio"):
        next(iter(dead.read(threading.Event())))

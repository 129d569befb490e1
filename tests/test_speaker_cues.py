"""say()'s callbacks on a real (virtual) device: started at a sentence's first audio, played when it ended whole.

The turn uses them to time the first audio and count what was heard; the bus events the screen
and the logs read stay as they were, and a callback's fault never silences the story.
"""

import logging
import threading

import pytest

from audio.devices import DeviceOutput
from audio.speak import Speaker
from events import EventBus, SpeakEnd
from tests.helpers import wait_for
from tests.test_speak import PacedOutput, ToneSynth

RATE = 16000  # ToneSynth's rate: 0.1 s of tone per word


def sentence(words):
    return " ".join(["word"] * words)


def length(text):
    """Samples ToneSynth makes for a sentence."""
    return len(ToneSynth().synthesize(text).samples)


class CountingOutput(DeviceOutput):
    """The real PortAudio output, counting the samples it has been handed."""

    def __init__(self, device):
        super().__init__(device)
        self.taken = 0

    def write(self, block, rate):
        super().write(block, rate)
        self.taken += len(block)


def cues(order, text, out):
    """started and played callbacks that note, in `order`, what the device had taken and on which thread."""
    def started():
        order.append(("started", text, out.taken, threading.current_thread().name))

    def played():
        order.append(("played", text, out.taken, threading.current_thread().name))

    return {"started": started, "played": played}


def test_started_comes_once_per_sentence_at_its_first_audio_and_played_when_it_ended(pulse):
    bus = EventBus()
    order = []
    bus.subscribe(lambda event: order.append((event.name, event.text)) if event.name.startswith("speak") else None)
    out = CountingOutput("pulse")
    texts = [sentence(3), sentence(5), sentence(4)]
    with Speaker(ToneSynth(), bus, output=out) as speaker:
        for text in texts:
            speaker.say(text, **cues(order, text, out))
        assert speaker.wait_idle(timeout=20)
    expected, total = [], 0
    for text in texts:
        # Each callback right after its bus event: started once the first 20 ms block was written,
        # played once every sample of the sentence was.
        expected += [("speak_start", text), ("started", text, total + int(0.02 * RATE), "tts-play"),
                     ("speak_end", text), ("played", text, total + length(text), "tts-play")]
        total += length(text)
    assert order == expected


def test_played_never_comes_for_a_sentence_cut_by_stop(pulse):
    order = []
    out = CountingOutput("pulse")
    with Speaker(ToneSynth(), EventBus(), output=out) as speaker:
        speaker.say(sentence(40), **cues(order, "cut", out))  # 4 s
        speaker.say(sentence(3), **cues(order, "queued", out))
        assert wait_for(lambda: out.taken > 0.5 * RATE, 10)
        speaker.stop()
        assert speaker.wait_idle(timeout=5)
        speaker.say(sentence(3), **cues(order, "after", out))
        assert speaker.wait_idle(timeout=10)
    assert [(name, text) for name, text, *_ in order] == [("started", "cut"), ("started", "after"), ("played", "after")]


def test_a_callback_that_raises_is_logged_and_the_story_plays_on(pulse, caplog):
    bus = EventBus()
    ends = []
    bus.subscribe(lambda event: ends.append(event.text) if isinstance(event, SpeakEnd) else None)
    out = CountingOutput("pulse")
    heard = []

    def broken():
        raise ValueError("a bug in the turn")

    with Speaker(ToneSynth(), bus, output=out) as speaker:
        speaker.say(sentence(3), started=broken, played=broken)
        speaker.say(sentence(4), started=lambda: heard.append("started"), played=lambda: heard.append("played"))
        assert speaker.wait_idle(timeout=10)
    assert ends == [sentence(3), sentence(4)]  # the first one played whole despite its started() failing
    assert out.taken == length(sentence(3)) + length(sentence(4))
    assert heard == ["started", "played"]
    failed = [r for r in caplog.records if "callback" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR, logging.ERROR]
    assert str(failed[0].exc_info[1]) == "a bug in the turn"


def test_nothing_runs_before_start_and_start_is_idempotent():
    out = PacedOutput()
    speaker = Speaker(ToneSynth(), EventBus(), output=out)
    assert speaker._play_thread is None and speaker._synth_thread is None  # building it started no thread
    with pytest.raises(RuntimeError, match="before start"):
        speaker.say("Nobody would play this.")
    assert speaker.start() is speaker
    thread = speaker._play_thread
    assert speaker.start()._play_thread is thread  # again: the same threads, not two more
    speaker.say(sentence(2))
    assert speaker.wait_idle(timeout=5)
    speaker.close()
    assert not thread.is_alive()
    assert out.samples_written == length(sentence(2))
    Speaker(ToneSynth(), EventBus(), output=PacedOutput()).close()  # never started: closes all the same

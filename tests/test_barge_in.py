"""Barge-in on a scripted session: the child who talks over the story stops it, and what they say is the next turn."""

import threading
import time

from audio.stt import Transcript
from audio.vad import FRAME_S
from events import EventBus, SpeakStart, TurnEnd, TurnStart
from tests.test_faults import QUIET, SPEECH, FlakySynth, events_of, make_session

STORY = ["Once upon a time. ", *[f"The fox ran {n} times round the hill. " for n in range(2, 40)]]


class Heard:
    """Whisper stand-in: the request, then what the child said over the story; a cut-off utterance is its last words only."""

    def __init__(self):
        self.texts = ["Tell me a story about a fox", "Tell me a story about a cat"]

    def transcribe(self, samples):
        seconds = len(samples) / 16000
        text = self.texts.pop(0) if seconds >= 1.0 else "a cat"  # each utterance has 1 s of speech
        return Transcript(text, "en", seconds, 0.01)


class TalkingOver:
    """The microphone: the request at once; once the story is heard, one second of speech over it, in real time.

    Real-time pacing matters: the answer the child cuts ends within a few frames, long before
    they have finished speaking.
    """

    def __init__(self, story_heard: threading.Event):
        self.request = [QUIET] * 31 + [SPEECH] * 31 + [QUIET] * 31
        self.over_story = [SPEECH] * 31 + [QUIET] * 31
        self.story_heard = story_heard

    def read(self, until):
        while not until.is_set():
            if self.request:
                yield self.request.pop(0)
            elif self.over_story and self.story_heard.is_set():
                time.sleep(FRAME_S)
                yield self.over_story.pop(0)
            else:
                time.sleep(0.005)

    def drain(self):
        pass

    def restart(self):
        pass


def test_words_that_barge_in_are_heard_to_their_end_and_become_the_next_turn():
    bus = EventBus()
    log = events_of(bus)
    session, listener, speaker = make_session([STORY, ["The cat purred."]], FlakySynth(fail_text=None), Heard(), bus)
    session.storyteller.backend.on_piece = lambda i: time.sleep(0.05)  # the story takes seconds to tell
    story_heard, stop = threading.Event(), threading.Event()
    bus.subscribe(lambda e: story_heard.set() if isinstance(e, SpeakStart) and e.text == "Once upon a time." else None)
    bus.subscribe(lambda e: stop.set() if sum(isinstance(x, TurnEnd) for x in log) >= 2 else None)
    loop = threading.Thread(target=session.run_voice, args=(listener, TalkingOver(story_heard), stop),
                            kwargs={"barge_in": True})
    loop.start()
    loop.join(30)
    stop.set()
    loop.join(5)
    speaker.close()
    assert [e.text for e in log if isinstance(e, TurnStart)] == ["Tell me a story about a fox", "Tell me a story about a cat"]
    ends = [e for e in log if isinstance(e, TurnEnd)]
    assert [e.cancelled for e in ends] == [True, False]
    assert "The cat purred." in [e.text for e in log if isinstance(e, SpeakStart)]

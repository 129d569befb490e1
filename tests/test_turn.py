"""The turn itself (turn.py): the child's words screened once, timings from the end of speech, what the child heard."""

from __future__ import annotations

import threading
import time

import lang
from acknowledge import Acknowledger, Pace
from activities.flow import Activities
from events import Acknowledged, EventBus, SentenceReady, SpeechEnd, TurnEnd, TurnStart
from llm.storyteller import Storyteller
from pipeline import Session
from safety.guard import SafetyGuard
from tests.fakes import ScriptedBackend
from turn import Heard, Stages

STORY = ["A fox found a key. ", "It opened a door. ", "Behind it was a garden."]


class CountingGuard(SafetyGuard):
    """The real guard, counting how often the child's words are checked."""

    def __init__(self):
        super().__init__("Early Elementary", "en")
        self.inputs: list[str] = []

    def check_input(self, text):
        self.inputs.append(text)
        return super().check_input(text)


class Hearing:
    """A speaker stand-in (the real one is tested in test_speaker_cues.py): the child hears the first `heard` lines whole.

    It calls the turn's callbacks as the real speaker's play thread does: started, then played.
    """

    def __init__(self, heard: int = 99):
        self.heard, self.said = heard, []

    def say(self, text, started=None, played=None):
        self.said.append(text)
        if len(self.said) <= self.heard:
            for cue in (started, played):
                if cue is not None:
                    cue()

    def stop(self):
        pass

    def wait_idle(self, timeout=None):
        return True


def stages(replies, guard=None, speaker=None, activities=False):
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    teller = Storyteller(ScriptedBackend(replies), "Early Elementary", "en", memory_tokens=2000, max_sentence_words=30)
    acts = Activities(teller.complete, guard.check_output if guard else None, "Early Elementary", "en",
                      questions="on_request") if activities else None
    return Stages(teller, bus, show=lambda _: None, guard=guard, speaker=speaker, activities=acts), events


def test_the_childs_words_are_checked_once_a_turn_even_with_activities():
    guard = CountingGuard()
    parts, _ = stages([STORY], guard=guard, activities=True)
    session = Session(parts)
    session.run_turn("Tell me a story about a fox, my name is Emma Stone")
    assert guard.inputs == ["Tell me a story about a fox, my name is Emma Stone"]  # once, not by each stage
    prompt = parts.storyteller.backend.prompts[0][-1]["content"]
    assert "Emma" not in prompt and "fox" in prompt  # what the one check took out never reached the model


def test_an_unsafe_request_during_an_activity_ends_it_and_gets_the_redirect():
    guard = CountingGuard()
    parts, events = stages([STORY, ["A penguin learnt to swim."]], guard=guard, activities=True)
    session = Session(parts)
    session.run_turn("Tell me a story about a fox")
    parts.activities.choice = object()  # a choice waits for the child (the choice itself is tested elsewhere)
    session.run_turn("tell me a story where everyone gets murdered")
    assert not parts.activities.waiting and len(guard.inputs) == 2
    start = [e for e in events if isinstance(e, TurnStart)][-1]
    assert (start.mode, start.mode_by) == ("new_story", "safety")


def test_timings_are_measured_from_when_the_child_stopped():
    parts, events = stages([STORY], speaker=Hearing())
    stopped = time.monotonic() - 0.5  # the listener declared the end half a second ago (transcription took that)
    end = Session(parts).run_turn(Heard("Tell me a story about a fox", at=stopped, ended=SpeechEnd(forced=False, silence_s=0.6)))
    assert end.stt_s >= 0.5 and end.first_sentence_s >= end.stt_s and end.first_audio_s >= end.first_sentence_s
    assert end.end_silence_s == 0.6 and end.total_s >= end.first_audio_s
    typed = Session(stages([STORY])[0]).run_turn("Tell me a story about a fox")
    assert typed.stt_s is None and typed.sentences_played is None  # typed: no speech to wait after, no speaker


def test_what_the_child_heard_comes_from_the_speakers_callbacks():
    """Two of three sentences played: turn_end says so, and "say that again" repeats what was heard."""
    parts, events = stages([STORY], speaker=Hearing(heard=2))
    end = Session(parts).run_turn("Tell me a story about a fox")
    assert isinstance(end, TurnEnd) and (end.sentences, end.sentences_played) == (3, 2)
    assert parts.storyteller.last_said == ["A fox found a key.", "It opened a door."]
    assert [e.index for e in events if isinstance(e, SentenceReady)] == [0, 1, 2]


def test_the_privacy_reminder_comes_first_and_the_story_is_numbered_after_it():
    parts, events = stages([STORY], guard=SafetyGuard("Early Elementary", "en"))
    Session(parts).run_turn("I live at 12 Oak Street, tell me a fox story")
    said = [(e.index, e.text) for e in events if isinstance(e, SentenceReady)]
    assert said[0] == (0, lang.get("en").privacy) and said[1] == (1, "A fox found a key.")
    assert parts.storyteller.last_said[0] == "A fox found a key."  # "say that again" repeats the story, not the reminder


def test_a_turn_runs_on_a_worker_and_stop_typed_meanwhile_cancels_it():
    """Every loop answers on a worker: the typed loop's own thread stays free, and "stop" ends the story."""
    backend_pieces = [f"Sentence {i}. " for i in range(100)]
    parts, events = stages([backend_pieces])
    parts.storyteller.backend.on_piece = lambda i: time.sleep(0.01)
    threads: list[str] = []
    started = threading.Event()
    parts = Stages(parts.storyteller, parts.bus, show=lambda _: (threads.append(threading.current_thread().name), started.set()))

    def typed():
        yield "Tell me a long story"
        assert started.wait(10)
        yield "stop"

    Session(parts).run_text(typed(), threading.Event())
    end = next(e for e in events if isinstance(e, TurnEnd))
    assert end.cancelled and end.sentences < 100
    assert set(threads) == {"turn"}


def test_care_is_the_whole_answer_and_is_what_say_that_again_repeats():
    parts, events = stages([STORY], guard=SafetyGuard("Early Elementary", "en"))
    session = Session(parts)
    session.run_turn("Tell me a story about a fox")
    session.run_turn("i want to kill myself")
    assert len(parts.storyteller.backend.prompts) == 1  # no model call for care
    names = [type(e).__name__ for e in events]
    last = names[len(names) - 1 - names[::-1].index("BlockedEvent"):]
    assert last[:3] == ["BlockedEvent", "Safeguarding", "TurnStart"]  # the teacher is told; the screen masks first
    session.run_turn("say that again")
    assert [e.text for e in events if isinstance(e, SentenceReady)][-1] == lang.get("en").self_harm


def test_personal_information_in_an_answer_is_reported_masked_before_anything_is_said():
    parts, events = stages([["Should the fox go into the cave, or follow the river?"], ["The fox swam."]],
                           guard=SafetyGuard("Early Elementary", "en"), activities=True)
    session = Session(parts)
    session.run_turn("Let me choose! A story about a fox")
    assert parts.activities.waiting
    session.run_turn("the river, my phone is 555 123 4567")
    blocked = next(i for i, e in enumerate(events) if getattr(e, "stage", "") == "input")
    first_line = next(i for i, e in enumerate(events) if isinstance(e, SentenceReady) and e.turn == 2)
    assert blocked < first_line and "555" not in events[blocked].masked
    assert "555" not in parts.storyteller.backend.prompts[-1][-1]["content"]


def test_a_failed_activity_is_apologised_for_and_heard_before_listening_again():
    class Waiting(Hearing):
        waited = 0

        def wait_idle(self, timeout=None):
            self.waited += 1
            return True

    speaker = Waiting()
    parts, events = stages([STORY], speaker=speaker, activities=True)
    session = Session(parts)
    parts.activities.choice = object()  # a broken activity: handle() raises on it
    assert session.run_turn("the cave") is None
    assert speaker.said == [lang.get("en").sorry] and speaker.waited == 1
    assert not parts.activities.waiting  # it ended; the next turn is a story again


def test_turn_end_counts_the_reply_not_the_questions_after_it():
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    questions = "Q: Who found the key? | A: a fox | H: It has a bushy tail."
    teller = Storyteller(ScriptedBackend([STORY, [questions]]), "Early Elementary", "en", memory_tokens=2000, max_sentence_words=30)
    acts = Activities(teller.complete, None, "Early Elementary", "en", questions="after_story")
    end = Session(Stages(teller, bus, show=lambda _: None, speaker=Hearing(), activities=acts)).run_turn("Tell me a fox story")
    assert acts.waiting and [e.text for e in events if isinstance(e, SentenceReady)][-1] == "Who found the key?"
    assert (end.sentences, end.sentences_played) == (3, 3)  # the intro and the question are the quiz's, not the reply's


def test_a_model_that_is_quick_to_its_first_sentence_is_not_kept_behind_the_acknowledgement():
    """speech.acknowledge: auto. The scripted model stands in for a fast one (a GPU) and, on demand, a slow one."""
    speaker = Hearing()
    parts, events = stages([STORY, STORY, STORY], speaker=speaker)
    parts = Stages(parts.storyteller, parts.bus, show=parts.show, speaker=speaker,
                   acknowledger=Acknowledger("en", pace=Pace(quick_s=0.5)))
    session = Session(parts)
    session.run_turn("Tell me a story about a fox")
    assert speaker.said[0] == events[[isinstance(e, Acknowledged) for e in events].index(True)].text
    assert speaker.said[1] == "A fox found a key."  # a model not yet seen: the line first
    speaker.said.clear()
    session.run_turn("Tell me a story about a bear")
    assert speaker.said[0] == "A fox found a key."  # quick last time: the story is the first thing heard
    assert sum(isinstance(e, Acknowledged) for e in events) == 1
    speaker.said.clear()
    parts.storyteller.backend.on_piece = lambda i: i == 0 and time.sleep(1.0)  # slow this time
    session.run_turn("Tell me a story about a cat")
    assert speaker.said[1] == "A fox found a key."  # the line after half a second, then the story
    assert sum(isinstance(e, Acknowledged) for e in events) == 2

"""Story activities: the question/answer/hint flow and the choice flow as state machines, in a session, end to end."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading

import pytest

import lang
from activities.choices import match_choice, parse_choice
from activities.flow import Activities
from activities.questions import QA, fallback_questions, is_dont_know, judge, parse_questions, words_match
from activities.summary import Summary
from events import AnswerJudged, BlockedEvent, ChoiceMade, EventBus, QuestionAsked, SentenceReady, TurnStart
from llm.storyteller import Storyteller
from pipeline import Session
from turn import Stages
from safety.guard import SafetyGuard
from tests.fakes import ScriptedBackend
from tests.helpers import ROOT

QUESTIONS = [
    "Q: Who found the blue feather? | A: Little Fox | H: She has a bushy tail.\n",
    "Q: What colour was the feather? | A: blue | H: It is the colour of the sky.\n",
    "Q: Who said thank you? | A: the jay | H: It is a bird.",
]
STORY = ["Little Fox found a blue feather. ", "She gave it to the jay. ", "The jay said thank you."]


def make_session(replies, language="en", questions="after_story", choices=False, summary=None):
    bus = EventBus()
    records: list = []
    bus.subscribe(records.append)
    backend = ScriptedBackend(replies)
    guard = SafetyGuard("Early Elementary", language, rng=random.Random(0))
    teller = Storyteller(backend, "Early Elementary", language, 1500, 30)
    acts = Activities(teller.complete, guard.check_output, "Early Elementary", language, questions=questions, choices=choices,
                      summary=summary, rng=random.Random(0))
    shown: list[str] = []
    return Session(Stages(teller, bus, show=shown.append, guard=guard, activities=acts)), backend, records, shown


def completing(reply):
    """A model that answers one activity question with `reply`, as the storyteller's complete() does."""
    return Storyteller(ScriptedBackend([reply]), "Early Elementary", "en", 1500, 30).complete


def test_parse_questions_and_fallback():
    assert parse_questions("".join(QUESTIONS) + "\nSome chatter.", 2) == [
        QA("Who found the blue feather?", "Little Fox", "She has a bushy tail."),
        QA("What colour was the feather?", "blue", "It is the colour of the sky."),
    ]
    assert fallback_questions("Once upon a time Benny the bear lived in a cave. Benny loved honey.", "en")[0].answer == "Benny"
    assert fallback_questions("Il était une fois un renard. Le renard avait faim.", "fr")[0].answer == "un renard"
    assert fallback_questions("Es war einmal ein Igel. Der Igel hatte Hunger. Der Igel schlief.", "de")[0].answer == "Der Igel"


@pytest.mark.parametrize(("expected", "said", "ok"), [
    ("Little Fox", "the little fox", True),
    ("Little Fox", "a fox", True),  # half the words are enough
    ("the robot", "the robut", True),  # a letter heard wrong
    ("rabbits", "a rabbit", True),
    ("blue", "red", False),
    ("Little Fox", "the jay", False),
])
def test_lenient_word_match(expected, said, ok):
    assert words_match(expected, said, "en") is ok


@pytest.mark.parametrize(("said", "language"), [("I don't know", "en"), ("dunno", "en"), ("", "en"), ("je sais pas", "fr"), ("Ich weiß es nicht", "de")])
def test_dont_know_and_silence(said, language):
    assert is_dont_know(said, language)


def test_the_model_judges_meaning_when_words_differ():
    qa = QA("How did the fox feel?", "happy", "Think of a smile.")
    assert judge(completing(["Yes."]), qa, "she was really glad", "en").correct
    assert not judge(completing(["No, it is not."]), qa, "she was sad", "en").correct
    assert judge(completing(["mumble"]), qa, "glad", "en").method == "match"  # no verdict: words decide


def test_questions_after_a_story_with_hint_retry_and_kind_answer(tmp_path):
    summary = Summary(str(tmp_path / "summary.json"), "Early Elementary", "en", SafetyGuard("Early Elementary", "en").redact)
    session, backend, records, shown = make_session([STORY, QUESTIONS, ["No."], ["No."]], summary=summary)
    session.run_turn("Tell me a story about a fox")
    assert shown[-2:] == [lang.get("en").quiz_intro, "Who found the blue feather?"]
    session.run_turn("the little fox")  # right
    assert shown[-2] in lang.get("en").praise and shown[-1] == "What colour was the feather?"
    session.run_turn("green")  # wrong: a hint (the model judge says no)
    assert shown[-1] == lang.get("en").hint.format(hint="It is the colour of the sky.")
    session.run_turn("blu")  # right on the second try, as Whisper might spell it
    assert shown[-2] in lang.get("en").praise
    session.run_turn("")  # silence: warmly, a clue
    assert shown[-1] == lang.get("en").dont_know_hint.format(hint="It is a bird.")
    session.run_turn("i don't know")  # twice: the answer, kindly, and the round ends
    assert shown[-2:] == [lang.get("en").tell.format(answer="the jay"), lang.get("en").quiz_done]
    judged = [(e.number, e.correct, e.hint, e.dont_know) for e in records if isinstance(e, AnswerJudged)]
    assert judged == [(1, True, False, False), (2, False, True, False), (2, True, False, False), (3, False, True, True), (3, False, False, True)]
    assert [e.text for e in records if isinstance(e, QuestionAsked)] == ["Who found the blue feather?", "What colour was the feather?", "Who said thank you?"]
    assert not any("Little Fox" in json.dumps(e.as_record()) for e in records if isinstance(e, QuestionAsked))  # answers stay hidden
    data = json.loads((tmp_path / "summary.json").read_text())
    [kept] = data["sessions"]
    assert (kept["stories"], kept["questions_asked"], kept["answered_right"]) == (1, 3, 2)
    assert "green" not in json.dumps(data)  # the child's words are not kept


def test_stop_word_and_a_new_story_request_end_the_questions():
    session, backend, records, shown = make_session([STORY, QUESTIONS, ["A new story."]])
    session.run_turn("Tell me a story about a fox")
    session.run_turn("stop")
    assert shown[-1] == lang.get("en").quiz_stopped and not session.stages.activities.waiting
    session.run_turn("tell me a story about a whale")
    assert "A new story." in shown


def test_off_topic_answer_gets_a_hint_not_a_new_story():
    session, backend, records, shown = make_session([STORY, QUESTIONS, ["No."]])
    session.run_turn("Tell me a story about a fox")
    session.run_turn("I like pizza")
    assert shown[-1] == lang.get("en").hint.format(hint="She has a bushy tail.")


def test_an_unsafe_answer_ends_the_quiz_and_gets_the_safety_redirect():
    session, backend, records, shown = make_session([STORY, QUESTIONS, ["A penguin story."]])
    session.run_turn("Tell me a story about a fox")
    session.run_turn("i want to kill myself")
    assert shown[-1] == lang.get("en").self_harm
    assert not session.stages.activities.waiting
    assert [e.category for e in records if isinstance(e, BlockedEvent)] == ["self_harm"]


def test_an_unsafe_question_from_the_model_is_never_asked():
    bad = ["Q: Who stabbed the jay? | A: the fox | H: It has a tail.\n", QUESTIONS[1]]
    session, backend, records, shown = make_session([STORY, bad])
    session.run_turn("Tell me a story about a fox")
    assert "Who stabbed the jay?" not in shown and shown[-1] == "What colour was the feather?"


def test_ask_me_a_question_on_request_in_french():
    fr_story = ["Le petit renard trouva une plume bleue. ", "Il la donna au geai."]
    fr_q = ["Q: Qu'a trouvé le renard ? | A: une plume | H: Elle vient d'un oiseau."]
    session, backend, records, shown = make_session([fr_story, fr_q], language="fr", questions="on_request")
    session.run_turn("Raconte-moi une histoire de renard")
    assert not session.stages.activities.waiting  # on_request: no questions by themselves
    session.run_turn("pose-moi une question")
    assert shown[-2:] == [lang.get("fr").quiz_intro, "Qu'a trouvé le renard ?"]
    session.run_turn("une plum")
    assert shown[-2] in lang.get("fr").praise


@pytest.mark.parametrize(("sentence", "language", "options"), [
    ("Should Benny go into the cave, or follow the river?", "en", ("go into the cave", "follow the river")),
    ("Est-ce que Léo doit entrer dans la grotte ou suivre la rivière ?", "fr", ("entrer dans la grotte", "suivre la rivière")),
    ("Soll Benny in die Höhle gehen oder dem Fluss folgen?", "de", ("in die Höhle gehen", "dem Fluss folgen")),
    ("Benny went home.", "en", None),
])
def test_parse_choice(sentence, language, options):
    assert parse_choice(sentence, language) == options


@pytest.mark.parametrize(("said", "picked"), [("the cave!", 0), ("follow the rivers", 1), ("the second one", 1), ("um, I don't know", None)])
def test_match_choice(said, picked):
    assert match_choice(said, ("go into the cave", "follow the river"), "en") is picked


def test_choice_point_flow_with_a_reask_and_the_story_going_on():
    story = ["Benny the bear walked in the woods. ", "Should Benny go into the cave, or follow the river?"]
    session, backend, records, shown = make_session([story, ["Benny followed the river to a waterfall. ", "The end."]],
                                                    questions="off")
    session.run_turn("Let me choose! A story about a bear")
    assert "exactly two options" in backend.prompts[0][-1]["content"]  # the model was asked for a choice
    assert session.stages.activities.waiting
    session.run_turn("hmm maybe")  # unclear: one friendly re-ask
    assert shown[-1] == lang.get("en").reask_choice.format(a="go into the cave", b="follow the river")
    session.run_turn("the river")
    assert lang.get("en").child_picked.format(choice="follow the river") in shown
    assert backend.prompts[1][-1]["content"].endswith("The child said: follow the river")
    assert shown[-1] == "The end."
    assert [(e.chosen, e.by) for e in records if isinstance(e, ChoiceMade)] == [("follow the river", "child")]
    # The pick and the story along it are one turn, with one number (the re-ask was turn 2).
    assert [e.turn for e in records if isinstance(e, TurnStart)] == [1, 3] and session.turns == 3
    assert {e.turn for e in records if isinstance(e, SentenceReady) and "waterfall" in e.text} == {3}


def test_unclear_twice_the_story_picks():
    story = ["Should Benny go into the cave, or follow the river?"]
    session, backend, records, shown = make_session([story, ["And so it went."]], questions="off", choices=True)
    session.run_turn("A story about a bear")
    session.run_turn("hmm")
    session.run_turn("I don't know")
    choice = next(e for e in records if isinstance(e, ChoiceMade))
    assert choice.by == "story" and choice.chosen in ("go into the cave", "follow the river")


def test_text_mode_story_questions_answers_and_summary_end_to_end(tiny, tmp_path):
    """The tiny models in --text mode: a story, a question, a transcription-style answer, the summary file.

    The tiny model's story (and so its main character) changes with the build, so the child's answer
    is made from what the app told: its most named character, with one letter heard wrong.
    """
    config = tmp_path / "config.yaml"
    config.write_text((tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}")
                      + f"activities:\n  questions: after_story\n  summary_path: {tmp_path / 'summary.md'}\n", encoding="utf-8")
    app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--config", str(config), "--text", "--mute"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watchdog = threading.Timer(300, app.kill)  # a story that never asks must fail here, not hang the suite
    watchdog.start()
    try:
        app.stdin.write("Tell me a story about a robot\n")
        app.stdin.flush()
        told = []
        for line in app.stdout:  # up to the question, which the tiny model's reply leaves to the fallback
            if line.strip() == "Who was the story about?":
                break
            told.append(line.strip())
        else:
            pytest.fail(f"no question was asked: {told}")
        who = fallback_questions(" ".join(told), "en")[0].answer
        heard = who.split()[:-1] + [who.split()[-1] + who[-1]]  # "the robot" heard as "the robott"
        out, err = app.communicate(" ".join(heard) + "\n", timeout=300)
    finally:
        watchdog.cancel()
        if app.poll() is None:
            app.kill()
    assert app.returncode == 0, err
    said = told + out.splitlines()
    assert lang.get("en").quiz_intro in said
    assert any(line in lang.get("en").praise for line in said), (who, heard, said)
    summary = (tmp_path / "summary.md").read_text()
    assert "1 questions asked, 1 answered right" in summary and " ".join(heard) not in summary


def test_the_summary_keeps_every_session_across_restarts(tmp_path):
    from datetime import datetime, timedelta

    path = tmp_path / "summary.md"
    first = Summary(str(path), "Early Elementary", "en", lambda text: text)
    first.story()
    first.story()
    first.new_session("Toddlers", "en")
    first.story()
    before = path.read_text()
    assert before.count("## Session") == 2 and "2 stories" in before and "Toddlers, en: 1 stories" in before
    Summary(str(path), "Early Elementary", "en", lambda text: text)  # a restart with no turns
    assert path.read_text() == before
    again = Summary(str(path), "Preteens", "en", lambda text: text)
    again.story()
    after = path.read_text()
    assert after.count("## Session") == 3 and "Preteens, en: 1 stories" in after and "2 stories" in after
    # Sessions older than summary_keep_days are dropped at the next start.
    store = tmp_path / ".summary.md.json"
    data = json.loads(store.read_text())
    data["sessions"][0]["started"] = (datetime.now() - timedelta(days=40)).isoformat(timespec="seconds")
    store.write_text(json.dumps(data))
    late = Summary(str(path), "Preteens", "en", lambda text: text, keep_days=30)
    assert len(late.sessions) == 2
    assert len(json.loads(store.read_text())["sessions"]) == 2  # dropped from the disk at once, not at the next story
    late.story()
    assert "## Session 4" in path.read_text()  # numbered on, never a number twice

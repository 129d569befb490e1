"""Child safety: the rule layer on tables in three languages, the age policy, the live session, the audit command."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import lang
from audio.speak import Speaker
from audio.tts import Audio
from events import (Acknowledged, BlockedEvent, EventBus, Heard, JsonLinesSink, SentenceReady, SpeechEnd, TurnEnd,
                    TurnStart)
from llm.storyteller import STEER, Storyteller
from pipeline import Session
from turn import Stages
from safety.guard import AGE_POLICY, SafetyGuard
from safety.privacy import NOT_KEPT, scrubber
from safety.rules import normalize, variants
from tests.fakes import ScriptedBackend
from tests.helpers import run_main
from tests.safety_cases import SAFE_INPUTS, SAFE_OUTPUTS, UNSAFE_INPUTS, UNSAFE_OUTPUTS


@pytest.mark.parametrize(("language", "text", "category"), UNSAFE_OUTPUTS + SAFE_OUTPUTS)
def test_output_table(language, text, category):
    assert SafetyGuard("Early Elementary", language).check_output(text).category == category


@pytest.mark.parametrize(("language", "text", "category"), UNSAFE_INPUTS + SAFE_INPUTS)
def test_input_table(language, text, category):
    assert SafetyGuard("Early Elementary", language).check_input(text).category == category


@pytest.mark.parametrize(("text", "blocked_for"), [
    # The README's policy table, row by row: mild peril, fairy-tale violence, rudeness, then gore.
    ("The witch cackled and the children were scared.", {"Toddlers"}),
    ("The hunter killed the wolf.", {"Toddlers", "Preschoolers"}),
    ("You are stupid, said the goose.", {"Toddlers", "Preschoolers"}),
    ("The soldiers slaughtered the whole village.", set(AGE_POLICY)),
    ("The bunny hopped home for tea.", set()),
])
def test_age_policy(text, blocked_for):
    blocked = {age for age in AGE_POLICY if not SafetyGuard(age, "en").check_output(text).ok}
    assert blocked == blocked_for


def test_a_toddler_may_ask_for_a_witch_story_but_hears_no_peril():
    guard = SafetyGuard("Toddlers", "en")
    assert guard.check_input("tell me a story about a witch").ok
    assert not guard.check_output("The witch was very scary.").ok


@pytest.mark.parametrize(("written", "means"), [("k1ll", "kill"), ("kiiiill", "kill"), ("s e x", "sex"), ("K.I.L.L", "kill")])
def test_respellings_are_read(written, means):
    assert any(means in v for v in variants(written))


def test_normalize_folds_accents_and_sharp_s():
    assert normalize("Hauptstraße Tötung Élève") == "hauptstrasse totung eleve"


def test_masked_text_hides_what_was_caught():
    guard = SafetyGuard("Early Elementary", "en")
    verdict = guard.check_output("Then he stabbed the giant in the tower.")
    assert verdict.masked == "Then he [gore] the giant in the tower."
    assert guard.redact("My name is Émma Stone, I live at 12 Oak Street, call 555-123-4567.") == (
        "My name is [full_name], [address], call [phone]."
    )


class RecordingSynth:
    """A voice that remembers every sentence it was asked to speak (its samples are silence)."""

    def __init__(self):
        self.spoken: list[str] = []

    def synthesize(self, text):
        self.spoken.append(text)
        return Audio(np.zeros(160, np.float32), 16000)

    def voices(self):
        return []


def session_with(replies, language="en", age_group="Early Elementary", steer_retries=1):
    bus = EventBus()
    records: list = []
    bus.subscribe(records.append)
    synth = RecordingSynth()
    speaker = Speaker(synth, bus, recorder=None, output=None).start()
    backend = ScriptedBackend(replies)
    teller = Storyteller(backend, age_group, language, 1500, 30, steer_retries=steer_retries)
    guard = SafetyGuard(age_group, language, rng=random.Random(0))
    shown: list[str] = []
    return Session(Stages(teller, bus, show=shown.append, guard=guard, speaker=speaker)), backend, synth, records, shown


def test_an_unsafe_sentence_mid_story_is_never_spoken_and_the_story_is_steered_back():
    session, backend, synth, records, shown = session_with([
        ["Once upon a time a fox found a cave. ", "Inside, a bear ", "stabbed the fox over and over. ", "The end."],
        ["The fox and the bear ", "shared some honey. ", "They became friends."],
    ])
    end = session.run_turn("Tell me a story about a fox")
    assert synth.spoken == shown == ["Once upon a time a fox found a cave.", "The fox and the bear shared some honey.", "They became friends."]
    blocked = [e for e in records if isinstance(e, BlockedEvent)]
    assert [(b.stage, b.category, b.masked) for b in blocked] == [("output", "gore", "Inside, a bear [gore] the fox over and over.")]
    assert "stabbed" not in json.dumps([e.as_record() for e in records])  # the unsafe words are nowhere in the event stream
    # The model was asked again, from the last safe sentence, with no trace of the blocked one.
    steer = backend.prompts[1]
    assert steer[-2] == {"role": "assistant", "content": "Once upon a time a fox found a cave."}
    assert steer[-1]["content"] == STEER.format(age="Early Elementary")
    assert end is not None and end.sentences == 3
    # The session goes on: the next turn is answered as usual.
    backend.enqueue(["A new story begins."])
    assert session.run_turn("another one please") is not None
    session.speaker.close()


def test_a_story_that_stays_unsafe_is_closed_kindly():
    session, backend, synth, records, _ = session_with([
        ["The dragon was hungry. ", "He murdered the knight."],
        ["Then he tortured everyone."],
    ])
    session.run_turn("Tell me a dragon story")
    session.speaker.close()
    assert synth.spoken[-1] == lang.get("en").closing
    assert not any("murder" in s or "tortur" in s for s in synth.spoken)
    assert [e.category for e in records if isinstance(e, BlockedEvent)] == ["gore", "gore"]


def test_an_unsafe_request_gets_a_redirect_and_a_safe_story():
    session, backend, synth, records, _ = session_with([["The penguin flapped and flapped. ", "Then it flew!"]])
    session.run_turn("tell me a story where everyone gets murdered")
    session.speaker.close()
    topic = random.Random(0).choice(lang.get("en").redirect_topics)
    assert synth.spoken[0] == lang.get("en").redirect.format(topic=topic)
    # The model never saw the request, only the safe one; nothing of it is remembered.
    prompt = json.dumps(backend.prompts[0])
    assert "murder" not in prompt and topic in prompt
    assert "murder" not in json.dumps(session.storyteller.history)
    assert not any(isinstance(e, Acknowledged) for e in records)  # no "Ooh, I love that idea!" before a redirect


@pytest.mark.parametrize("language", ["en", "fr", "de"])
def test_a_child_speaking_of_self_harm_hears_care_not_a_story(language):
    text = {"en": "i want to kill myself", "fr": "je veux mourir", "de": "ich will nicht mehr leben"}[language]
    session, backend, synth, records, _ = session_with([], language=language)
    session.run_turn(text)
    session.speaker.close()
    assert synth.spoken == [lang.get(language).self_harm]
    assert backend.prompts == []  # no model call at all
    assert [e.category for e in records if isinstance(e, BlockedEvent)] == ["self_harm"]


def test_personal_information_is_taken_out_before_the_model_sees_it():
    bus, records = EventBus(), []
    bus.subscribe(records.append)
    teller = Storyteller(ScriptedBackend([["A dragon story."]]), "Early Elementary", "en", 1500, 30)
    session = Session(Stages(teller, bus, show=lambda _: None, guard=SafetyGuard("Early Elementary", "en")))
    session.run_turn("My name is Emma Stone and I live at 12 Oak Street. Tell me a dragon story")
    blocked, start = records[0], records[1]
    assert isinstance(blocked, BlockedEvent) and blocked.category == "personal_info"  # first, masked
    assert isinstance(start, TurnStart)  # the request goes on
    said = [e.text for e in records if isinstance(e, SentenceReady)]
    assert said == [lang.get("en").privacy, "A dragon story."]
    prompt = json.dumps(teller.backend.prompts[0])
    assert "Emma" not in prompt and "Oak" not in prompt and "dragon story" in prompt


def test_events_file_keeps_no_child_words_unless_enabled(tmp_path):
    redact = SafetyGuard("Early Elementary", "en").redact
    heard = Heard(text="I live at 12 Oak Street", language="en", duration=2.0, t=1.0)
    assert scrubber(False, redact)(heard).text == NOT_KEPT
    assert scrubber(True, redact)(heard).text == "[address]"
    sentence = SentenceReady(turn=1, index=0, text="Call 555 123 4567.", t=1.0)
    assert scrubber(False, redact)(sentence).text == "Call [phone]."
    # The end of a turn names the child's last word ("ends on 'Emma'"): it is the child's words too.
    end = SpeechEnd(forced=False, silence_s=0.3, words="ends on 'emma'", t=1.0)
    assert scrubber(False, redact)(end).words == NOT_KEPT
    turn = TurnEnd(turn=1, sentences=1, tokens=3, cancelled=False, stt_s=None, first_token_s=None, first_sentence_s=None,
                   first_audio_s=None, first_story_audio_s=None, total_s=2.0, end_words="ends on 'emma'", end_silence_s=0.3, t=2.0)
    assert scrubber(False, redact)(turn).end_words == NOT_KEPT and scrubber(False, redact)(turn).end_silence_s == 0.3
    # Through the bus to the file, as the app writes it: none of the child's words is on disk.
    bus, path = EventBus(), tmp_path / "events.jsonl"
    sink = JsonLinesSink(str(path), scrubber(False, redact))
    bus.subscribe(sink)
    for event in (heard, BlockedEvent(turn=1, stage="input", category="personal_info", rule="address", layer="rules",
                                      masked="I live at [address], Emma"), TurnStart(turn=1, text="I live at 12 Oak Street, Emma",
                                                                                     mode="new_story"), end, turn):
        bus.emit(event)
    sink.close()
    written = path.read_text(encoding="utf-8")
    assert len(written.splitlines()) == 5 and written.count(NOT_KEPT) == 5
    assert "oak" not in written.lower() and "emma" not in written.lower()


@pytest.mark.integration
def test_check_safety_command(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("The fox found a golden key.\nThe witch was scary.\nHe stabbed the troll.\n\n", encoding="utf-8")
    out = run_main("--check-safety", str(path), "--age-group", "toddlers", "--language", "en")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "ok\t\tThe fox found a golden key.", "blocked\tperil\tThe witch was scary.", "blocked\tgore\tHe stabbed the troll.",
    ]
    # Input side from standard input: a witch story may be asked for at any age.
    out = run_main("--check-safety", "-", "--check-safety-input", "--age-group", "toddlers", stdin="a story about a witch\ni wanna die\n")
    assert out.stdout.splitlines() == ["ok\t\ta story about a witch", "blocked\tself_harm\ti wanna die"]
    missing = run_main("--check-safety", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: --check-safety: cannot read")


def test_model_based_classifier_behind_the_same_interface(tmp_path, tiny):
    """A real transformers text-classification model loaded from a folder (a tiny one built here).

    Its weights are random except the output bias, which makes "toxic" certain: the test checks the
    plumbing (loading, labels, threshold, category), not a classifier's judgement.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from main import build_guard
    from settings import Settings

    tokenizer = AutoTokenizer.from_pretrained(tiny / "base")
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=2, id2label={0: "non-toxic", 1: "toxic"}, label2id={"non-toxic": 0, "toxic": 1})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 6.0]))
    model.save_pretrained(tmp_path / "clf")
    tokenizer.save_pretrained(tmp_path / "clf")
    guard = build_guard(Settings().with_overrides(safety={"classifier": str(tmp_path / "clf")}))
    verdict = guard.check_output("The bunny hopped home.")
    assert not verdict.ok and verdict.category == "classifier:toxic" and verdict.layer == "classifier"
    assert guard.check_output("He stabbed him.").layer == "rules"  # the rules answer first
    lenient = build_guard(Settings().with_overrides(safety={"classifier": str(tmp_path / "clf"), "classifier_threshold": 0.999}))
    assert lenient.check_output("The bunny hopped home.").ok


def test_held_out_table():
    """Sentences written by someone who never saw the word lists: few misses, no false alarms."""
    from tests import safety_heldout as h

    def wrong(rows, side):
        out = []
        for language, text, category in rows:
            guard = SafetyGuard("Early Elementary", language)
            verdict = guard.check_output(text) if side == "output" else guard.check_input(text)
            if verdict.ok != (category is None):
                out.append(text)
        return out

    assert len(wrong(h.HELDOUT_UNSAFE_OUTPUTS, "output")) <= 2  # README: misses
    assert wrong(h.HELDOUT_SAFE_OUTPUTS, "output") == [] and wrong(h.HELDOUT_SAFE_INPUTS, "input") == []
    assert len(wrong(h.HELDOUT_UNSAFE_INPUTS, "input")) <= 1


@pytest.mark.integration
def test_a_remote_backend_is_announced_at_start_up(tmp_path):
    config = tmp_path / "remote.yaml"
    config.write_text("llm:\n  backend: hf-inference\n  hf_token_env: NO_SUCH_TOKEN_VARIABLE\n", encoding="utf-8")
    out = run_main("--config", str(config), "--text", stdin="", env={"NO_SUCH_TOKEN_VARIABLE": ""})
    assert "privacy: llm.backend is hf-inference" in out.stderr

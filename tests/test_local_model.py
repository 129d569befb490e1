"""The local transformers + peft backend on the tiny Phi-3 and its LoRA, through the real loading code."""

import threading

import pytest

from llm.backends import create_backend
from events import SentenceReady as Sentence
from llm.storyteller import ReplyDone, Storyteller
from settings import load_settings
from tests.helpers import run_main

PROMPT = [{"role": "user", "content": "Tell me a story about a fox."}]


@pytest.fixture(scope="module")
def llm(tiny):
    return load_settings(tiny / "config.yaml").llm


@pytest.fixture(scope="module")
def backend(llm):
    return create_backend(llm)


def reply(backend, messages=PROMPT):
    return "".join(backend.stream(messages, threading.Event()))


def test_base_model_is_read_from_the_adapter_config(backend, tiny):
    assert backend.fine_tuned
    assert str(tiny / "base") in backend.description and "cpu, float32" in backend.description


def test_tiny_model_tells_a_story_in_sentences(backend):
    teller = Storyteller(backend, "Early Elementary", "en", memory_tokens=400, max_sentence_words=30)
    items = list(teller.stream("Tell me a story about a fox"))
    said = [i.text for i in items if isinstance(i, Sentence)]
    assert len(said) >= 2
    assert all(s[-1] in ".!?\"”" for s in said[:-1]), said
    assert isinstance(items[-1], ReplyDone) and items[-1].pieces > 5


def test_adapter_is_really_applied(llm, backend):
    """The LoRA was trained on robot stories: with it the reply moves toward robots."""
    base_only = create_backend(llm.model_copy(update={"adapter": None, "base_model": backend.source.base}))
    assert not base_only.fine_tuned
    with_adapter, without = reply(backend).lower(), reply(base_only).lower()
    assert with_adapter != without
    assert with_adapter.count("robot") > without.count("robot")


def test_merged_adapter_gives_the_same_story(llm, backend):
    merged = create_backend(llm.model_copy(update={"merge_adapter": True}))
    assert "adapter merged" in merged.description
    assert reply(merged) == reply(backend)


def test_cancel_stops_generation_within_a_few_tokens(llm):
    backend = create_backend(llm.model_copy(update={"max_new_tokens": 400}))
    lm_head = next(m for name, m in backend.model.named_modules() if name.endswith("lm_head"))
    forwards = []  # one forward pass per generated token (the first one is the prompt)
    hook = lm_head.register_forward_hook(lambda *args: forwards.append(1))
    cancel = threading.Event()
    try:
        for i, _ in enumerate(backend.stream(PROMPT, cancel)):
            if i == 5:
                cancel.set()
                at_cancel = len(forwards)
    finally:
        hook.remove()
    assert len(forwards) - at_cancel <= 2, "generation went on after cancel"
    assert not [t for t in threading.enumerate() if t.name == "llm-generate"]


def test_prompt_token_count_matches_the_chat_template(backend):
    ids = backend.tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_dict=False)
    assert backend.count_tokens(PROMPT) == len(ids)


def test_app_streams_a_reply_and_writes_sentence_events(tiny, tmp_path):
    events = tmp_path / "ev.jsonl"
    result = run_main("--config", str(tiny / "config.yaml"), "--text", "--events", str(events),
                      stdin="Tell me a story about a fox\nWhat happens next?\n")
    assert result.returncode == 0, result.stderr
    import json

    records = [json.loads(line) for line in events.read_text().splitlines()]
    names = [r["event"] for r in records]
    assert names[0] == "session_start" and names.count("turn_end") == 2
    said = [r for r in records if r["event"] == "sentence"]
    assert said and all(r["text"] and isinstance(r["t"], float) for r in said)
    assert [r["text"] for r in said] == [line for line in result.stdout.splitlines() if line.strip()]
    ends = [r for r in records if r["event"] == "turn_end"]
    assert all(0 < e["first_token_s"] <= e["first_sentence_s"] <= e["total_s"] for e in ends)
    modes = [r["mode"] for r in records if r["event"] == "turn_start"]
    assert modes == ["new_story", "continue"]


@pytest.mark.integration
def test_missing_weights_offline_is_one_clear_line(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("llm:\n  model: custom\n  base_model: someone/not-downloaded\n")
    result = run_main("--config", str(config), "--text", stdin="hello\n", env={"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "someone/not-downloaded" in error[0] and "llm.model: starter" in error[0]


@pytest.mark.integration
def test_phi_ed_offline_names_both_downloads():
    result = run_main("--text", stdin="hello\n", env={"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "microsoft/Phi-3-mini-128k-instruct" in result.stderr and "Mortadha/Phi-Ed-25072024" in result.stderr

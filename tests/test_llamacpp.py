"""The llama.cpp backend on the tiny Phi-3 + LoRA: GGUF export, quality against transformers, streaming."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from errors import ModelError
from llm.backends import create_backend, resolve_source
from llm.kvcache import MIN_SNAPSHOT_TOKENS
from settings import load_settings

if os.environ.get("CI"):
    import llama_cpp  # noqa: F401 - scripts/install.sh installs it: CI must not skip these tests
else:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (scripts/install.sh installs it)")

from llm import gguf_export

PROMPTS = [
    "Tell me a story about a fox.",
    "Tell me a story about a robot.",
    "Can you tell me a bedtime story?",
    "Tell me a story about a brave little girl.",
    "I want a story about the sea.",
    "Tell me a funny story.",
    "Tell me a story about a cat and a dog.",
    "What happened to the little bird?",
    "Tell me a story about the moon.",
    "Tell me a story about a dragon.",
]
# Teacher-forced greedy (top-1) agreement with transformers (float32) at every position of the
# transformers reply to each prompt. Measured on the tiny model: f16 100%, q8_0 100%, q4_k_m 99.6%,
# q4_0 98.8%; a GGUF of the base alone agrees only ~35% with the adapter's model. The bounds leave
# margin for other CPUs' rounding. (The tiny model is very sure of itself; Phi-3's margins are
# thinner, see llm/gguf_export.py for the perplexity cost of each type.)
MIN_AGREEMENT = {"f16": 0.98, "q8_0": 0.97, "q4_k_m": 0.9, "q4_0": 0.9}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """Each test session builds its GGUFs into its own cache folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
        yield


@pytest.fixture(scope="module")
def llm(tiny, cache):
    # One thread: the tiny model gains nothing from two, and a busy CI machine slows spinning threads.
    return load_settings(tiny / "config.yaml").llm.model_copy(
        update={"backend": "llamacpp", "quantization": "q8_0", "threads": 1}
    )


@pytest.fixture(scope="module")
def backend(llm):
    return create_backend(llm)


@pytest.fixture(scope="module")
def reference(llm):
    """The transformers backend (float32, adapter applied): what the GGUF must agree with."""
    return create_backend(llm.model_copy(update={"backend": "local"}))


def reply(backend, messages):
    return "".join(backend.stream(messages, threading.Event()))


def ask(text):
    return [{"role": "user", "content": text}]


def teacher_forced_agreement(reference, gguf_path, prompts) -> tuple[float, int]:
    """Share of positions where llama.cpp's top token equals transformers' on transformers' own reply."""
    import llama_cpp
    import numpy as np
    import torch

    model = llama_cpp.Llama(model_path=str(gguf_path), n_ctx=512, logits_all=True, n_threads=1, verbose=False)
    agree = total = 0
    for text in prompts:
        ids = reference.tokenizer.apply_chat_template(ask(text), add_generation_prompt=True, return_dict=False)
        with torch.inference_mode():
            out = reference.model.generate(torch.tensor([ids]), max_new_tokens=60, do_sample=False)
            seq = out[0].tolist()
            want = reference.model(out).logits[0, len(ids) - 1 : len(seq) - 1].argmax(-1).numpy()
        model.reset()
        model.eval(seq)
        got = np.asarray(model.scores[len(ids) - 1 : len(seq) - 1]).argmax(-1)
        agree += int((got == want).sum())
        total += len(want)
    return agree / total, total


def test_backend_describes_itself(backend, llm):
    assert backend.fine_tuned
    assert "llama.cpp" in backend.description and "q8_0" in backend.description
    assert backend.gguf_path.name == "model-q8_0.gguf" and backend.gguf_path.is_file()


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_k_m", "q4_0"])
def test_quantized_model_agrees_with_transformers(llm, reference, quant):
    path = gguf_export.ensure_gguf(resolve_source(llm), quant)
    agreement, positions = teacher_forced_agreement(reference, path, PROMPTS)
    print(f"{quant}: top-1 agreement {agreement:.3f} over {positions} positions")
    assert positions > 300
    assert agreement >= MIN_AGREEMENT[quant], f"{quant}: {agreement:.3f}"


def test_base_only_gguf_disagrees_with_the_fine_tuned_model(llm, reference, tiny):
    """The agreement above comes from the merged adapter: without it the GGUF is another model."""
    base_only = llm.model_copy(update={"adapter": None, "base_model": str(tiny / "base")})
    agreement, _ = teacher_forced_agreement(reference, gguf_export.ensure_gguf(resolve_source(base_only), "q8_0"), PROMPTS)
    assert agreement < 0.6


def test_greedy_story_matches_transformers(backend, reference):
    """q8_0 greedy text: the same story as the float32 transformers model, at least at the start."""
    for text in PROMPTS[:3]:
        got, want = reply(backend, ask(text)), reply(reference, ask(text))
        assert got.split()[:12] == want.split()[:12], (got, want)


def test_prompt_and_token_count_match_transformers(backend, reference):
    messages = [{"role": "system", "content": "You tell stories."}, *ask("Tell me a story about a fox.")]
    assert backend.count_tokens(messages) == reference.count_tokens(messages)


def test_adapter_is_merged_into_the_gguf(llm, backend):
    """The LoRA was trained on robot stories: the merged GGUF tells of robots, the base-only one does not."""
    base_only = create_backend(llm.model_copy(update={"adapter": None, "base_model": backend.source.base}))
    assert not base_only.fine_tuned and base_only.gguf_path != backend.gguf_path
    with_adapter, without = reply(backend, ask("Tell me a story.")).lower(), reply(base_only, ask("Tell me a story.")).lower()
    assert with_adapter != without
    assert with_adapter.count("robot") > without.count("robot")


def test_stream_yields_pieces_and_stops_at_end_of_turn(backend, llm):
    pieces = list(backend.stream(ask("Tell me a story about a fox."), threading.Event()))
    assert len(pieces) > 10 and all(pieces)
    assert "<|end|>" not in "".join(pieces)
    assert len(pieces) < llm.max_new_tokens  # it stopped on its own, not at the token limit


def test_cancel_stops_generation_before_the_next_token(llm):
    backend = create_backend(llm.model_copy(update={"max_new_tokens": 400}))
    cancel = threading.Event()
    after = []
    for i, piece in enumerate(backend.stream(ask("Tell me a story about a fox."), cancel)):
        if cancel.is_set():
            after.append(piece)
        if i == 3:
            cancel.set()
    assert after == []


def test_cancel_during_a_long_prompt_stops_between_chunks(llm):
    """A prompt is computed in chunks, so a cancel does not wait for all of it (seconds on a CPU)."""
    from llm.llamacpp import PREFILL_CHUNK

    backend = create_backend(llm)
    backend.model.reset()

    class SetAfter(threading.Event):  # reads as set from its third check on
        checks = 2

        def is_set(self):
            self.checks -= 1
            return self.checks < 0 or super().is_set()

    story = " ".join(["The fox ran to the river and saw a big fish."] * 12)
    assert backend.count_tokens(ask(story)) > 3 * PREFILL_CHUNK
    assert list(backend.stream(ask(story), SetAfter())) == []
    assert backend.model.n_tokens <= 2 * PREFILL_CHUNK


def test_cancel_from_another_thread_is_prompt(llm):
    backend = create_backend(llm.model_copy(update={"max_new_tokens": 400}))
    cancel, seen, stamps = threading.Event(), [], {}

    def consume():
        for piece in backend.stream(ask("Tell me a story about a robot."), cancel):
            seen.append(piece)  # noqa: PERF402 - watched while it grows
        stamps["done"] = time.monotonic()

    worker = threading.Thread(target=consume)
    worker.start()
    while len(seen) < 5:
        time.sleep(0.001)
    stamps["cancel"] = time.monotonic()
    count = len(seen)
    cancel.set()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(seen) - count <= 2 and stamps["done"] - stamps["cancel"] < 1.0


def test_later_turns_reuse_the_cached_prompt(backend, llm):
    """llama.cpp keeps the KV cache: the next turn only computes what is new in its prompt."""
    system = {"role": "system", "content": "You tell short stories to children."}
    first = [system, *ask("Tell me a story about a fox.")]
    told = reply(backend, first)
    second = [*first, {"role": "assistant", "content": told}, *ask("What happened next?")]
    reply(backend, second)
    assert backend.last_prompt_reused >= backend.count_tokens(first) - 1
    started = create_backend(llm)
    started.prime([system])  # at start-up: the system prompt is then already computed
    assert started.cache.held() == started.prompt_ids([system])
    reply(started, [system, *ask("Tell me a story about a robot.")])
    assert started.last_prompt_reused >= started.count_tokens([system]) - 2
    # Once a turn has used the cache, a late prime (a slow start-up thread) leaves it alone.
    held = started.cache.held()
    started.prime([system])
    assert started.cache.held() == held


def said(text):
    return {"role": "assistant", "content": text}


SYSTEM = {"role": "system", "content": "You tell short stories to children."}


def test_an_activity_prompt_in_between_keeps_the_story_cache(llm):
    """A question writer's prompt overwrites the context; the story's cells are saved and loaded back."""
    backend, fresh = create_backend(llm), create_backend(llm)
    # The app's system prompt is long: the story's cache is worth saving whatever the tiny model tells.
    system = {"role": "system", "content": " ".join([SYSTEM["content"]] * 12)}
    first = [system, *ask("Tell me a story about a fox.")]
    assert backend.count_tokens(first) >= MIN_SNAPSHOT_TOKENS
    told = reply(backend, first)
    second = [*first, said(told), *ask("What happened next?")]
    activity = [{"role": "system", "content": "Write one question about this story for a child."}, *ask(told)]
    reply(backend, activity)
    assert len(backend.cache.snapshots) == 1  # the story, saved before the activity overwrote it
    got = reply(backend, second)
    assert backend.last_prompt_reused >= backend.count_tokens(first) + 3  # the story was not read again
    # The loaded cells are the same numbers: the same reply as with nothing in between.
    assert reply(fresh, first) == told
    assert got == reply(fresh, second)


def test_a_trimmed_conversation_shifts_the_cache_instead_of_reading_it_again(llm, reference):
    """The storyteller drops the oldest exchange once the budget is full; the cache drops it too."""
    backend = create_backend(llm.model_copy(update={"max_new_tokens": 40}))
    messages = [SYSTEM, *ask("Tell me a story about a fox.")]
    for follow_up in ("What happened next?", "And then?"):
        messages = [*messages, said(reply(backend, messages)), *ask(follow_up)]
    messages = [*messages, said(reply(backend, messages))]
    trimmed = [SYSTEM, *messages[3:], *ask("Tell me more.")]  # exchange 1 no longer fits
    kept = backend.count_tokens([SYSTEM, *messages[3:]])
    got = reply(backend, trimmed)
    assert backend.last_prompt_reused >= kept - 8  # not just the system prompt: the kept turns too
    assert backend.cache.held()[: backend.last_prompt_reused] == backend.prompt_ids(trimmed)[: backend.last_prompt_reused]
    # The kept cells were computed with the dropped exchange in view, so the reply is close to,
    # not always equal to, one read from scratch; on the tiny model they agree.
    want = reply(reference, trimmed)
    assert got.split()[:8] == want.split()[:8], (got, want)


def test_the_primed_system_prompt_is_kept_on_disk_for_the_next_start(llm):
    """Start-up reads the system prompt's cache from a file instead of computing it (seconds on a CPU)."""
    system = {"role": "system", "content": "You tell gentle bedtime stories to small children."}
    messages = [system, *ask("Tell me a story about the moon.")]
    first = create_backend(llm)
    first.prime([system])
    assert first.primed_from is None  # computed, then written
    (path,) = [p for p in first.gguf_path.parent.glob("prime-*.kv") if first.cache.key(first.prompt_ids([system])) in p.name]
    second = create_backend(llm)
    second.prime([system])
    assert second.primed_from == str(path)
    got = reply(second, messages)
    assert second.last_prompt_reused >= second.count_tokens([system]) - 2
    assert got == reply(create_backend(llm), messages)  # the loaded cells are the computed ones
    # A damaged file is not trusted: the prompt is computed again and the file rewritten.
    path.write_bytes(path.read_bytes()[:100])
    third = create_backend(llm)
    third.prime([system])
    assert third.primed_from is None and reply(third, messages) == got
    assert path.stat().st_size > 1000


def test_gguf_is_built_once_and_cached(llm, backend):
    source = resolve_source(llm)
    before = backend.gguf_path.stat().st_mtime_ns
    assert gguf_export.ensure_gguf(source, "q8_0") == backend.gguf_path
    assert backend.gguf_path.stat().st_mtime_ns == before
    assert not list(backend.gguf_path.parent.glob("*.tmp"))


def test_missing_llama_cpp_is_one_clear_line(llm, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp now raises ImportError
    with pytest.raises(ModelError) as info:
        create_backend(llm)
    message = str(info.value)
    assert "llama-cpp-python" in message and "pip install" in message and "\n" not in message


def test_non_phi3_model_is_refused_clearly(tmp_path, tiny, llm):
    """A model of another architecture fails with a message naming the fix, not a traceback."""
    import json
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny / "base", other)
    cfg = json.loads((other / "config.json").read_text())
    cfg.update(model_type="llama", architectures=["LlamaForCausalLM"])
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="llm.backend: local"):
        create_backend(llm.model_copy(update={"adapter": None, "base_model": str(other)}))


def test_bad_quantization_is_a_config_error(tmp_path):
    from errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("llm:\n  backend: llamacpp\n  quantization: q3\n")
    with pytest.raises(ConfigError, match="llm.quantization"):
        load_settings(path)

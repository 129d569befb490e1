"""Soak: 100 text turns on the tiny models; memory settles, threads and file handles do not grow."""

import threading

import psutil

from events import EventBus, JsonLinesSink
from llm.backends import create_backend
from llm.storyteller import Storyteller
from pipeline import Session
from turn import Stages
from settings import load_settings

RSS_GROWTH_BOUND_MB = 40


def test_100_turns_leave_no_growth(tiny, tmp_path):
    llm = load_settings(tiny / "config.yaml").llm.model_copy(update={"max_new_tokens": 16})
    bus = EventBus()
    sink = JsonLinesSink(str(tmp_path / "ev.jsonl"))
    bus.subscribe(sink)
    teller = Storyteller(create_backend(llm), "Early Elementary", "en", memory_tokens=300, max_sentence_words=30)
    session = Session(Stages(teller, bus, show=lambda text: None))
    me = psutil.Process()
    prompts = ["Tell me a story about a fox", "What happens next?", "Make it about a robot", "Why is the moon round?"]

    def turns(n):
        for i in range(n):
            end = session.run_turn(prompts[i % len(prompts)])
            assert end is not None and end.tokens > 0

    turns(10)  # warm-up: allocator pools and caches fill
    rss0, threads0, fds0 = me.memory_info().rss, threading.active_count(), me.num_fds()
    turns(90)
    rss1, threads1, fds1 = me.memory_info().rss, threading.active_count(), me.num_fds()
    sink.close()
    assert (rss1 - rss0) / 2**20 < RSS_GROWTH_BOUND_MB, f"resident memory grew {(rss1 - rss0) / 2**20:.1f} MB"
    assert threads1 == threads0
    assert fds1 <= fds0
    assert len(teller.history) < 20  # memory is trimmed to the token budget, not kept for 100 turns

"""Pipeline overhead: streaming through Storyteller + SentenceSplitter vs a bare model.generate.

    python -m bench.overhead [--configs A.yaml,B.yaml] [--max-new-tokens 64] [--repeats 3] [--with-shape] [--json out.json]
    python -m bench.llm_speed --overhead ...   (the same)

Same model object, same prompt (the Storyteller's own messages), greedy, same max_new_tokens, so
both produce the same tokens. "Last token": when the reply's last token reaches the storyteller
(pipeline) or generate() returns (bare). "First sentence": when the splitter yields it (pipeline)
or when the bare run produced the token that completed it (same token index). The bare generate
runs in a worker thread like the backend's (see bare_in_thread); a main-thread run is shown too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    add_json_arg,
    finish_meta,
    machine_meta,
    print_table,
    progress,
    write_json,
)
from bench.llm_speed import (
    DEFAULT_SHAPE_DIR,
    REQUEST,
    TimedBackend,
    row_settings,
    run_story,
    warm_up,
)

DEFAULT_CONFIGS = ["/tmp/tinyfinal/config.yaml", str(ROOT / "configs" / "starter.yaml")]
COLUMNS = [
    ("label", "model"), ("tokens", "tokens"), ("same_output", "same text"),
    ("pipeline_ttft_s", "pipe 1st tok s"), ("bare_ttft_s", "bare 1st tok s"),
    ("pipeline_last_token_s", "pipe last tok s"), ("bare_last_token_s", "bare last tok s"), ("last_token_ratio", "ratio"),
    ("first_sentence_tokens", "1st sent tok"), ("pipeline_first_sentence_s", "pipe 1st sent s"),
    ("bare_first_sentence_s", "bare 1st sent s"), ("first_sentence_ratio", "ratio "),
    ("bare_main_thread_last_token_s", "bare main-thread last s"), ("skipped", "skipped"),
]


def bare_in_thread(backend: Any, messages: list[dict[str, str]], max_new_tokens: int, seed: int) -> dict[str, Any]:
    """bare_once in a plain worker thread, where the backend runs generate too.

    On this shared 2-core machine, torch's OpenMP in the main thread was up to 45x slower on tiny
    matmuls than in a worker thread while other processes loaded the CPU (spinning barriers), so
    the comparison keeps the thread placement equal and measures the streaming itself.
    """
    out: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: out.append(bare_once(backend, messages, max_new_tokens, seed)))
    worker.start()
    worker.join()
    return out[0]


def bare_once(backend: Any, messages: list[dict[str, str]], max_new_tokens: int, seed: int) -> dict[str, Any]:
    """model.generate on the same messages, timing each token with a stopping criterion (no streamer)."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    tok, stamps = backend.tokenizer, []

    class _Stamp(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):  # called once per generated token
            stamps.append(time.perf_counter())
            return False

    prepare = getattr(backend, "_prepare", lambda m: m)  # folds the system prompt where a template drops it
    t0 = time.perf_counter()
    enc = tok.apply_chat_template(prepare(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = backend.model.generate(
            **enc.to(backend.input_device), max_new_tokens=max_new_tokens, do_sample=False,
            repetition_penalty=backend.repetition_penalty, pad_token_id=tok.pad_token_id or tok.eos_token_id,
            stopping_criteria=StoppingCriteriaList([_Stamp()]),
        )
    end = time.perf_counter() - t0
    new = out[0, enc["input_ids"].shape[1]:]
    return {"times": [t - t0 for t in stamps], "end_s": end, "tokens": len(new),
            "text": tok.decode(new, skip_special_tokens=True).strip()}


def measure(label: str, config: str, max_new_tokens: int, repeats: int) -> dict[str, Any]:
    """Median pipeline and bare timings for one configured model, alternating the two sides."""
    from llm.backends import create_backend
    from llm.storyteller import Storyteller

    settings = row_settings({"config": config, "llm": {"max_new_tokens": max_new_tokens, "temperature": 0.0, "seed": 0}})
    llm, story = settings.llm, settings.story
    backend = create_backend(llm)
    if not hasattr(backend, "model"):
        return {"label": label, "skipped": f"{backend.description}: a bare generate needs a transformers backend"}
    timed = TimedBackend(backend)
    storyteller = Storyteller(timed, story.age_group, story.language, llm.memory_tokens, story.max_sentence_words)
    warm_up(backend)
    messages = storyteller.messages_for(REQUEST, storyteller.mode_of(REQUEST))
    pipe, bare, bare_main = [], [], []
    for _ in progress(range(repeats), desc=label):
        storyteller.reset()  # every run is the same first turn
        run = run_story(storyteller, timed, REQUEST, max_new_tokens)
        run["text"] = "".join(timed.pieces).strip()
        pipe.append(run)
        bare.append(bare_in_thread(backend, messages, max_new_tokens, llm.seed or 0))
        if not bare_main:  # once is enough to show the effect, and it can be very slow
            bare_main.append(bare_once(backend, messages, max_new_tokens, llm.seed or 0))
    n = bare[0]["tokens"]
    k = pipe[0]["first_sentence_tokens"]  # pieces consumed when the first sentence came out
    row: dict[str, Any] = {
        "label": label, "description": backend.description, "tokens": n, "repeats": repeats,
        "same_output": pipe[0]["text"] == bare[0]["text"],
        "pipeline_ttft_s": _median(r["times"][0] for r in pipe),
        "bare_ttft_s": _median(r["times"][0] for r in bare),
        "pipeline_last_token_s": _median(r["times"][n - 1] for r in pipe if len(r["times"]) >= n),
        "bare_last_token_s": _median(r["end_s"] for r in bare),
        "bare_main_thread_last_token_s": _median(r["end_s"] for r in bare_main),
        "pipeline_reply_done_s": _median(r["reply_done_s"] for r in pipe),
        "first_sentence_tokens": k,
        "first_sentence": pipe[0].get("first_sentence"),
        "pipeline_first_sentence_s": _median(r["first_sentence_s"] for r in pipe) if k else None,
        "bare_first_sentence_s": _median(r["times"][k - 1] for r in bare if len(r["times"]) >= k) if k else None,
    }
    row["last_token_ratio"] = _ratio(row["pipeline_last_token_s"], row["bare_last_token_s"])
    row["first_sentence_ratio"] = _ratio(row["pipeline_first_sentence_s"], row["bare_first_sentence_s"])
    return row


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def shape_config(shape_dir: Path, tmp: Path) -> str:
    """A config.yaml for the real-shape model (bf16, adapter unmerged), written to tmp."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "phi3-shape.yaml"
    path.write_text(
        "llm:\n  model: custom\n"
        f"  base_model: {(shape_dir / 'base').resolve()}\n  adapter: {(shape_dir / 'adapter').resolve()}\n"
        "  device: cpu\n  dtype: bfloat16\n"
    )
    return str(path)


def run(args: argparse.Namespace) -> int:
    """Measure every config given (missing ones are reported as skipped), print the table."""
    configs = args.overhead_configs.split(",") if getattr(args, "overhead_configs", None) else DEFAULT_CONFIGS
    meta = machine_meta(request=REQUEST, max_new_tokens=args.max_new_tokens, repeats=args.repeats, decoding="greedy",
                        timing="seconds from the request; median of the runs; pipeline and bare alternate")
    rows = []
    for config in configs:
        label = Path(config).parent.name if Path(config).stem == "config" else Path(config).stem
        if not Path(config).is_file():
            rows.append({"label": label, "skipped": f"{config} not found"})
            continue
        rows.append(measure(label, config, args.max_new_tokens, args.repeats))
    if getattr(args, "with_shape", False):
        shape = Path(args.shape_dir)
        if (shape / "READY.json").is_file():
            cfg = shape_config(shape, Path("/tmp/bench-overhead"))
            rows.append(measure("phi3-shape bf16", cfg, args.shape_tokens, 1))
        else:
            rows.append({"label": "phi3-shape bf16", "skipped": f"{shape} not built (run bench/llm_speed.py once)"})
    finish_meta(meta)
    print_table(rows, COLUMNS, meta)
    write_json(args.json, meta, rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line of the overhead benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--overhead-configs", "--configs", dest="overhead_configs", help="comma-separated config.yaml files")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--with-shape", action="store_true", help="add Phi-3-mini's real shape (bf16, few tokens, 1 run)")
    p.add_argument("--shape-dir", default=DEFAULT_SHAPE_DIR)
    p.add_argument("--shape-tokens", type=int, default=8)
    add_json_arg(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

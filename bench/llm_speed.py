"""LLM benchmark: load, time to first token / sentence and decode speed through the project's own code.

    python -m bench.llm_speed [--shape-dir /tmp/phi3-shape] [--dtypes bfloat16,float32] [--merge no,yes] [--json out.json]
    python -m bench.llm_speed --config CONFIG.yaml [--backend NAME] [--json out.json]
    python -m bench.llm_speed --overhead [--overhead-configs A.yaml,B.yaml] [--json out.json]

Default mode: Phi-3-mini's real shape (hidden 3072, 32 layers, MLP 8192, vocab 32064) with random
weights plus a random LoRA of Phi-Ed's shape, built once into --shape-dir (bf16 safetensors) and
reused. Every row loads through `llm.backends.create_backend(settings.llm)` and answers one child
request through `llm.storyteller.Storyteller`, in a fresh process so that its peak RSS is its own.
Random weights are a fair stand-in for speed, never for quality: their output is not prose, so the
first sentence is also measured as the time at which FIRST_SENTENCE_TOKENS tokens have arrived.

--config benchmarks any configured backend (e.g. a llama.cpp one) with the same prompt.
--overhead compares streaming through Storyteller + SentenceSplitter with a bare model.generate
(bench/overhead.py holds that part).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.common import (
    GIB,
    ROOT,
    Stopwatch,
    add_json_arg,
    finish_meta,
    machine_meta,
    peak_rss_gib,
    print_table,
    write_json,
)

DEFAULT_SHAPE_DIR = "/tmp/phi3-shape"
DEFAULT_TOKENIZER_DIR = "/tmp/tinyfinal/base"  # scripts/make_tiny_models.py /tmp/tinyfinal builds it
# microsoft/Phi-3-mini-128k-instruct's architecture. Its longrope scaling only matters past 4k
# positions, so a 4k context with plain rope has the same cost per token for a kiosk's prompts.
PHI3_MINI = {
    "hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
    "intermediate_size": 8192, "vocab_size": 32064, "hidden_act": "silu", "rms_norm_eps": 1e-5,
    "max_position_embeddings": 4096, "original_max_position_embeddings": 4096, "tie_word_embeddings": False,
    "attention_dropout": 0.0, "resid_pdrop": 0.0, "embd_pdrop": 0.0,
}
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]}
# A typical first sentence for a young child is 10-12 words, about 15 tokens.
FIRST_SENTENCE_TOKENS = 15
REQUEST = "Can you tell me a story about a dragon?"  # harness/speech_clips.py REQUESTS[0]
FP32_MARGIN_GIB = 3.0  # free memory kept beyond the fp32 weights before trying an fp32 row
# A row gives up when the machine's free memory falls below this while it runs: the machine is
# shared, and the kernel's OOM killer must not be left to choose what dies.
LOW_MEMORY_GIB = 1.0
LOW_MEMORY_EXIT = 3
ROW_MARK = "BENCH-ROW "  # prefixes a row process's JSON result on its stdout

COLUMNS = [
    ("label", "model"), ("dtype", "dtype"), ("merged", "merged"), ("load_s", "load s"), ("prime_s", "prime s"),
    ("prompt_tokens", "prompt tok"), ("ttft_s", "first token s"), ("first_sentence_s", "1st sentence s"),
    ("first_sentence_proxy_s", f"{FIRST_SENTENCE_TOKENS} tok s"), ("decode_tok_s", "decode tok/s"),
    ("s_per_token", "s/token"), ("tokens", "tokens"), ("peak_rss_gib", "peak RSS GiB"), ("skipped", "skipped"),
]


# --- the real shape, built once ----------------------------------------------------------------
def build_shape(shape_dir: Path, tokenizer_dir: Path, layers: int = 32) -> Path:
    """Write Phi-3-mini's shape (random bf16 weights) and a random Phi-Ed-shaped LoRA, unless present."""
    ready = shape_dir / "READY.json"
    if ready.is_file():
        return shape_dir
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        Phi3Config,
    )

    transformers.utils.logging.disable_progress_bar()
    sw = Stopwatch()
    if not (tokenizer_dir / "tokenizer_config.json").is_file():
        raise SystemExit(f"no tokenizer in {tokenizer_dir}: run scripts/make_tiny_models.py {tokenizer_dir.parent} first")
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if len(tok) > PHI3_MINI["vocab_size"]:
        raise SystemExit(f"{tokenizer_dir}: tokenizer has {len(tok)} tokens, more than Phi-3's {PHI3_MINI['vocab_size']}")
    end = tok.convert_tokens_to_ids("<|end|>")
    eos = [end, tok.eos_token_id] if isinstance(end, int) and end != tok.unk_token_id else [tok.eos_token_id]
    cfg = Phi3Config(**{**PHI3_MINI, "num_hidden_layers": layers}, bos_token_id=tok.bos_token_id,
                     eos_token_id=eos, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    # Built straight in bf16: an fp32 model of this shape would need 15 GB just to exist.
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    with torch.no_grad():
        # Random logits would pick ids the small test tokenizer cannot decode (and special tokens
        # that end the reply), so the text would be empty. Zero rows give those ids logit 0, below
        # the best of the decodable ones: greedy output is then visible text. The matmul, hence the
        # speed, is unchanged.
        head = model.lm_head.weight
        head[len(tok):] = 0
        head[list(set(tok.all_special_ids))] = 0
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=eos, pad_token_id=tok.pad_token_id)
    tmp = shape_dir.with_name(shape_dir.name + ".tmp")
    base = shape_dir / "base"
    model.save_pretrained(tmp / "base")
    tok.save_pretrained(tmp / "base")
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **LORA), autocast_adapter_dtype=False)
    with torch.no_grad():  # peft starts B at zero (a no-op adapter); a random B makes it change the output
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 1e-3)
    # The adapter names its base by this string; the final absolute path, so loading needs no hub.
    peft_model.peft_config["default"].base_model_name_or_path = str(base.resolve())
    peft_model.save_pretrained(tmp / "adapter")
    info = {"config": {**PHI3_MINI, "num_hidden_layers": layers}, "lora": LORA, "tokenizer": str(tokenizer_dir),
            "tokenizer_size": len(tok), "dtype": "bfloat16", "build_s": round(sw(), 1),
            "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3)}
    (tmp / "READY.json").write_text(json.dumps(info, indent=2))
    if shape_dir.exists():
        import shutil

        shutil.rmtree(shape_dir)
    tmp.rename(shape_dir)
    print(f"built {shape_dir} in {info['build_s']} s", file=sys.stderr)
    return shape_dir


def folder_gib(path: Path) -> float:
    """Size of the safetensors files in a folder, in GiB."""
    return sum(f.stat().st_size for f in path.glob("*.safetensors")) / GIB


# --- one row, in its own process -------------------------------------------------------------------
class TimedBackend:
    """Wraps a backend and records when each streamed piece (about one per token) arrives."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.description, self.fine_tuned = inner.description, inner.fine_tuned
        self.context_tokens = inner.context_tokens
        self.times: list[float] = []
        self.pieces: list[str] = []
        self.ended = False  # the model's stream is over: a sentence now is the splitter's flush
        self.ended_at: float | None = None  # time.monotonic() when it ended (the pipeline's clock)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Delegate to the wrapped backend."""
        return self.inner.count_tokens(messages)

    def forget(self) -> None:
        """Delegate to the wrapped backend (llama.cpp drops its saved caches for a new child)."""
        forget = getattr(self.inner, "forget", None)
        if forget is not None:
            forget()

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """The wrapped stream, timestamping every piece (empty ones included: each is a token)."""
        self.times, self.pieces, self.ended = [], [], False
        with closing(self.inner.stream(messages, cancel)) as inner:
            for piece in inner:
                self.times.append(time.perf_counter())
                self.pieces.append(piece)
                yield piece
        self.ended, self.ended_at = True, time.monotonic()


def row_settings(spec: dict[str, Any]):
    """Settings for a row: the config file (or the defaults) with the row's llm keys applied."""
    from settings import Settings, load_settings

    settings = load_settings(spec["config"]) if spec.get("config") else Settings()
    return settings.with_overrides(llm=spec.get("llm", {}))


def warm_up(backend: Any) -> None:
    """One token on a short prompt: thread pools and allocator warm, as after a kiosk's start-up."""
    with closing(backend.stream([{"role": "user", "content": "Hi"}], threading.Event())) as pieces:
        next(pieces, None)


def run_story(storyteller: Any, timed: TimedBackend, request: str, max_new_tokens: int) -> dict[str, Any]:
    """Answer one request through the Storyteller; return the timings (seconds from the request)."""
    from events import SentenceReady
    from llm.storyteller import FirstToken, ReplyDone

    out: dict[str, Any] = {"first_text_s": None, "first_sentence_s": None, "first_sentence_tokens": None}
    decision = storyteller.intent_of(request)
    out["prompt_tokens"] = storyteller.backend.count_tokens(storyteller.messages_for(request, decision.mode))
    t0 = time.perf_counter()
    for item in storyteller.stream(request, decision=decision):
        now = time.perf_counter() - t0
        if isinstance(item, FirstToken) and out["first_text_s"] is None:
            out["first_text_s"] = round(now, 3)
        elif isinstance(item, SentenceReady) and out["first_sentence_s"] is None and not timed.ended:
            # Only a sentence the splitter completed while the model was still writing counts: the
            # rest of a reply cut at max_new_tokens (random weights: all of it) is the flush.
            out["first_sentence_s"] = round(now, 3)
            out["first_sentence_tokens"] = len(timed.times)
            out["first_sentence"] = item.text[:80]
        elif isinstance(item, ReplyDone):
            out["reply_done_s"] = round(now, 3)
            out["reply_start"] = item.text[:80]
    times = [t - t0 for t in timed.times[:max_new_tokens]]  # the streamer's end() flush is no token
    out["tokens"] = len(times)
    out["ttft_s"] = round(times[0], 3) if times else None
    out["first_sentence_proxy_s"] = round(times[FIRST_SENTENCE_TOKENS - 1], 3) if len(times) >= FIRST_SENTENCE_TOKENS else None
    if len(times) >= 2:
        out["s_per_token"] = round((times[-1] - times[0]) / (len(times) - 1), 4)
        out["decode_tok_s"] = round(1 / out["s_per_token"], 2) if out["s_per_token"] > 0 else None
    out["times"] = [round(t, 4) for t in times]
    return out


def guard_memory() -> None:
    """Exit this row's process at once if free memory runs out (another process grew meanwhile)."""
    import os

    import psutil

    while True:
        time.sleep(0.5)
        if psutil.virtual_memory().available < LOW_MEMORY_GIB * GIB:
            print(ROW_MARK + json.dumps({"skipped": f"given up: free memory fell below {LOW_MEMORY_GIB:.0f} GiB while it ran"}),
                  flush=True)
            os._exit(LOW_MEMORY_EXIT)


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the backend the row names, warm it up, answer REQUEST; timings, tokens and peak RSS."""
    from llm.backends import create_backend
    from llm.storyteller import Storyteller

    threading.Thread(target=guard_memory, name="memory-guard", daemon=True).start()
    settings = row_settings(spec)
    llm, story = settings.llm, settings.story
    sw = Stopwatch()
    backend = create_backend(llm)
    load_s = round(sw(), 2)
    rss_after_load = peak_rss_gib()
    primed: dict[str, Any] = {}
    if spec.get("prime"):
        # As main.py does at start-up (and nothing else): the system prompt read into a KV-keeping
        # backend (llama.cpp), computed on the first start and loaded from its file on later ones.
        sw = Stopwatch()
        Storyteller(backend, story.age_group, story.language, llm.memory_tokens, story.max_sentence_words).warm_up()
        primed = {"prime_s": round(sw(), 2), "prime_from_file": bool(getattr(backend, "primed_from", None))}
    else:
        warm_up(backend)
    timed = TimedBackend(backend)
    storyteller = Storyteller(timed, story.age_group, story.language, llm.memory_tokens, story.max_sentence_words)
    result = run_story(storyteller, timed, spec.get("request", REQUEST), llm.max_new_tokens)
    return {"description": backend.description, "load_s": load_s, "peak_rss_after_load_gib": rss_after_load,
            "peak_rss_gib": peak_rss_gib(), **primed, **result}


def run_row_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one row in a fresh Python process (its own peak RSS, its memory freed afterwards)."""
    proc = subprocess.run([sys.executable, "-m", "bench.llm_speed", "--row", json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                          text=True, check=False)
    # Native libraries (llama.cpp) may write to the same stdout without a newline: find the mark.
    lines = [line.split(ROW_MARK, 1)[1] for line in proc.stdout.splitlines() if ROW_MARK in line]
    if proc.returncode == LOW_MEMORY_EXIT and lines:
        return json.loads(lines[-1])
    if proc.returncode != 0 or not lines:
        return {"skipped": f"failed (exit {proc.returncode}); see the error above"}
    return json.loads(lines[-1])


# --- which rows ---------------------------------------------------------------------------------------
def shape_specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows for the real shape: each dtype x merged/unmerged adapter."""
    shape = Path(args.shape_dir)
    base, adapter = str((shape / "base").resolve()), str((shape / "adapter").resolve())
    specs = []
    for dtype in args.dtypes.split(","):
        for merge in args.merge.split(","):
            specs.append({
                "label": "Phi-3-mini shape + LoRA (random)", "dtype": dtype, "merged": merge == "yes",
                "llm": {"model": "custom", "base_model": base, "adapter": adapter, "device": "cpu", "dtype": dtype,
                        "merge_adapter": merge == "yes", "max_new_tokens": args.max_new_tokens,
                        "temperature": 0.0, "seed": 0},
            })
    return specs


def config_specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One row for a configured backend (greedy, same prompt and token budget as the shape rows)."""
    llm: dict[str, Any] = {"max_new_tokens": args.max_new_tokens, "temperature": 0.0, "seed": 0}
    if args.backend:
        llm["backend"] = args.backend
    settings = row_settings({"config": args.config, "llm": llm})
    config = Path(args.config)
    return [{"label": args.label or (config.parent.name if config.stem == "config" else config.stem),
             # merge_adapter is the local backend's choice (llama.cpp always merges into its GGUF).
             "dtype": settings.llm.dtype,
             "merged": settings.llm.merge_adapter if settings.llm.adapter and settings.llm.backend == "local" else None,
             "backend": settings.llm.backend, "config": str(Path(args.config).resolve()), "llm": llm}]


def memory_skip(spec: dict[str, Any], shape_dir: Path) -> str | None:
    """Why an fp32 row of the real shape cannot run safely now (None: it can)."""
    import psutil

    if spec.get("dtype") != "float32" or spec.get("config"):
        return None
    need = folder_gib(shape_dir / "base") * 2 + FP32_MARGIN_GIB
    free = psutil.virtual_memory().available / GIB
    if free < need:
        return f"needs ~{need:.0f} GiB free (fp32 weights + margin), {free:.1f} GiB was free"
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the rows, print the table."""
    argv = sys.argv[1:] if argv is None else argv
    if "--overhead" in argv:
        from bench import overhead

        return overhead.main([a for a in argv if a != "--overhead"])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="benchmark the backend this config.yaml sets up instead of the real shape")
    p.add_argument("--backend", help="with --config: override llm.backend (e.g. llamacpp)")
    p.add_argument("--label", help="with --config: the model's name in the table")
    p.add_argument("--prime", action="store_true",
                   help="with --config: read the system prompt into the KV cache first, as the app does at start-up")
    p.add_argument("--shape-dir", default=DEFAULT_SHAPE_DIR, help="where the real-shape model is cached (built once)")
    p.add_argument("--tokenizer-dir", default=DEFAULT_TOKENIZER_DIR, help="tokenizer copied into the shape model")
    p.add_argument("--layers", type=int, default=32, help="layers of the shape model (fewer only for smoke tests)")
    p.add_argument("--dtypes", default="bfloat16,float32", help="real shape: dtypes to measure")
    p.add_argument("--merge", default="no,yes", help="real shape: adapter unmerged (no) and/or merged (yes)")
    p.add_argument("--max-new-tokens", type=int, default=32, help="tokens per reply (decode is ~0.56 s/token at the real shape)")
    p.add_argument("--overhead", action="store_true", help="pipeline vs bare model.generate: the options of bench/overhead.py follow")
    p.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, JSON on stdout
    add_json_arg(p)
    args = p.parse_args(argv)
    if args.row:
        print("\n" + ROW_MARK + json.dumps(run_row(json.loads(args.row))), flush=True)
        return 0
    meta = machine_meta(request=REQUEST, max_new_tokens=args.max_new_tokens, decoding="greedy",
                        first_sentence_proxy=f"time at which {FIRST_SENTENCE_TOKENS} tokens have arrived",
                        timing="seconds from the request reaching Storyteller.stream, after a one-token warm-up "
                               "(with --prime: after the start-up prime instead)")
    if args.config:
        specs = [{**spec, "prime": args.prime} for spec in config_specs(args)]
    else:
        shape = build_shape(Path(args.shape_dir), Path(args.tokenizer_dir), args.layers)
        meta["shape"] = json.loads((shape / "READY.json").read_text())
        meta["weights_gib"] = round(folder_gib(shape / "base"), 2)
        meta["input"] = (f"'{REQUEST}' with the Early Elementary system prompt (llm/prompts.py); the test "
                         "tokenizer (1024 tokens) makes it longer than Phi-3's own tokenizer would")
        specs = shape_specs(args)
    rows = []
    for spec in specs:
        reason = memory_skip(spec, Path(args.shape_dir))
        result = {"skipped": reason} if reason else run_row_process(spec)
        rows.append({k: v for k, v in spec.items() if k != "llm"} | result)
        print(f"done: {spec['label']} {spec.get('dtype')} merged={spec.get('merged')}", file=sys.stderr)
    finish_meta(meta)
    print_table(rows, COLUMNS, meta)
    write_json(args.json, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CPU speed of Phi-3-mini's shape: bf16 transformers vs torch int8 vs llama.cpp GGUF quantizations.

    python -m bench.cpu_quant [--shape-dir /tmp/phi3-shape] [--rows bf16,int8,q4_0,q4_k_m,q8_0]
                              [--prompt-tokens 300] [--new-tokens 32] [--json out.json]

Every row merges the same random LoRA into the same random-weight base (bench/llm_speed.py builds both,
Phi-3-mini's shape), feeds the same prompt of --prompt-tokens token ids and decodes --new-tokens
greedily, ignoring end-of-text. Reported: load time, prefill (prompt in, first token out), time to
the 15th token (about a child's first sentence), decode seconds per token after the first, and peak
memory. llama.cpp rows also time a primed turn, whose prompt shares all but its last
--new-turn-tokens tokens with what is already in the KV cache (the app reads the system prompt at
start-up and keeps the conversation), and with --history a turn after the conversation outgrew its
budget (oldest exchange dropped), with the backend's cache shift and without it. Rows run one after
another, each in a fresh process. The GGUF rows build their files with the project's converter
(llm/gguf_export.py: merge, lossless GGUF, llama.cpp quantizer) into --work-dir once and time that
too. Random weights are a fair stand-in for speed, never for quality.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Stopwatch,
    add_json_arg,
    finish_meta,
    machine_meta,
    peak_rss_gib,
    print_table,
    write_json,
)

FIRST_SENTENCE_TOKENS = 15
GGUF_ROWS = ("q4_0", "q4_k_m", "q8_0", "f16")
COLUMNS = [
    ("row", "engine / weights"), ("file_gib", "GiB"), ("build_s", "build s"), ("load_s", "load s"),
    ("prefill_s", "prefill s"), ("first_sentence_s", "15 tok s"), ("decode_s_per_token", "s/token"),
    ("tokens_per_s", "tok/s"), ("speedup_vs_bf16", "x bf16"), ("primed_prefill_s", "primed prefill s"),
    ("primed_first_sentence_s", "primed 15 tok s"), ("trimmed_shifted_first_sentence_s", "trimmed+shift 15 tok s"),
    ("trimmed_reread_first_sentence_s", "trimmed reread 15 tok s"), ("prime_file_mb", "prime file MB"),
    ("prime_load_s", "prime load s"), ("build", "llama.cpp build"),
    ("peak_rss_gib", "RSS GiB"), ("load1", "load1"),
]


def prompt_ids(tokenizer_dir: str, n: int) -> list[int]:
    """n token ids of ordinary (non-special) text tokens, the same every run."""
    import random

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    special = set(tok.all_special_ids)
    pool = [i for i in range(len(tok)) if i not in special]
    rng = random.Random(0)
    return [rng.choice(pool) for _ in range(n)]


def timeline(stamps: list[float], start: float) -> dict[str, Any]:
    """Prefill, first-sentence and per-token figures from the arrival times of the new tokens."""
    out = {"prefill_s": round(stamps[0] - start, 3), "new_tokens": len(stamps)}
    if len(stamps) >= FIRST_SENTENCE_TOKENS:
        out["first_sentence_s"] = round(stamps[FIRST_SENTENCE_TOKENS - 1] - start, 3)
    if len(stamps) > 1:
        per = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
        out.update(decode_s_per_token=round(per, 4), tokens_per_s=round(1 / per, 2))
    return out


# ---------------------------------------------------------------------------------------------
# Rows (each runs in its own process)


def row_transformers(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    import transformers

    from llm.gguf_export import load_merged

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(spec["threads"])
    sw = Stopwatch()
    model = load_merged(spec["base"], spec["adapter"])
    if spec["row"] == "int8":
        # torch's dynamic int8: Linear weights stored int8, activations quantized per call. It needs
        # float32 modules; converting one decoder layer at a time keeps memory near the bf16 model.
        from torch.ao.quantization import quantize_dynamic

        model.model.embed_tokens.float()
        model.model.norm.float()
        for layer in model.model.layers:
            quantize_dynamic(layer.float(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        model.lm_head = quantize_dynamic(torch.nn.Sequential(model.lm_head.float()), {torch.nn.Linear},
                                         dtype=torch.qint8)[0]
        model.config.dtype = torch.float32
    load_s = sw()
    ids = torch.tensor([spec["prompt"]])
    stamps: list[float] = []

    class Clock:  # a streamer that only records when each new token arrives
        first = True

        def put(self, value: Any) -> None:
            if self.first:
                self.first = False  # generate() hands the prompt over first
                return
            stamps.append(time.perf_counter())

        def end(self) -> None:
            pass

    n = spec["new_tokens"]
    with torch.inference_mode():
        model.generate(ids[:, :8], max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        start = time.perf_counter()
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, streamer=Clock(), pad_token_id=0)
    return {"load_s": round(load_s, 1), **timeline(stamps, start)}


def llama_build(llama_cpp: Any) -> str:
    """Which SIMD kernels this llama.cpp build has: "avx2", or "avx512" and its extensions."""
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    on = {f.split("=")[0].strip() for f in info.replace("|", "\n").splitlines() if f.strip().endswith("= 1")}
    if "AVX512" not in on:
        return "avx2" if "AVX2" in on else "?"
    return "+".join(["avx512"] + [x.lower() for x in ("VNNI", "BF16", "VBMI") if f"AVX512_{x}" in on])


def time_tokens(model: Any, ids: list[int], n: int, before: Any = None) -> dict[str, Any]:
    """Prefill and per-token figures for ids (the cache as it is), stopping after n new tokens."""
    stamps: list[float] = []
    start = time.perf_counter()
    if before is not None:
        before(ids)  # the backend's cache arrangement, timed with the turn
    for _ in model.generate(ids, temp=0.0, top_k=1, min_p=0.0, repeat_penalty=1.0, reset=True):
        stamps.append(time.perf_counter())
        if len(stamps) >= n:
            break
    return timeline(stamps, start)


def row_llamacpp(spec: dict[str, Any]) -> dict[str, Any]:
    # --llama-cpp-path reaches this row's process as PYTHONPATH (run_row_process), ahead of site-packages.
    from llm.gguf_export import import_llama_cpp
    from llm.llamacpp_cache import PromptCache

    llama_cpp = import_llama_cpp()
    sw = Stopwatch()
    model = llama_cpp.Llama(model_path=spec["gguf"], n_ctx=spec["context"], n_threads=spec["threads"],
                            n_threads_batch=spec["threads"], n_gpu_layers=0, verbose=False)
    load_s = sw()
    for _ in zip(range(2), model.generate(spec["prompt"][:8], temp=0.0, top_k=1)):  # warm-up
        pass
    model.reset()
    prompt, new = spec["prompt"], spec["new_turn_tokens"]
    out = {"load_s": round(load_s, 1), "file_gib": round(Path(spec["gguf"]).stat().st_size / 1024**3, 2),
           "build": llama_build(llama_cpp), **time_tokens(model, prompt, spec["new_tokens"])}
    # Primed: all but the last `new` tokens are already in the KV cache, as in the app's first turn
    # (the system prompt is read at start-up) and every later one (the conversation is kept).
    model.reset()
    for _ in zip(range(1), model.generate(prompt[:-new], temp=0.0, top_k=1)):
        pass
    # The app writes the primed system prompt to disk; the next start-up loads it instead.
    cache = PromptCache(model, llama_cpp)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prime-bench.kv"
        cache.save_file(path, keep=1)
        primed = time_tokens(model, prompt, FIRST_SENTENCE_TOKENS)
        sw = Stopwatch()
        loaded = cache.load_file(path, prompt[:-new])
        out.update(prime_file_mb=round(path.stat().st_size / 1e6), prime_load_s=round(sw(), 3) if loaded else None)
    out.update(primed_prefill_s=primed["prefill_s"], primed_first_sentence_s=primed.get("first_sentence_s"))
    if spec.get("history"):
        out.update(trimmed_turn(model, cache, spec))
    return out


def trimmed_turn(model: Any, cache: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """A turn after the conversation outgrew its budget: the oldest exchange is dropped from the prompt.

    The cache holds system + history (--history tokens); the new prompt drops the --drop tokens
    after the system prompt and adds the new turn. Timed with the backend's shift
    (llm/llamacpp_cache.py) and, for comparison, with the common prefix alone (the rest read again).
    """
    import random

    rng = random.Random(1)
    system, n, drop, new = spec["system_tokens"], spec["history"], spec["drop"], spec["new_turn_tokens"]
    pool = sorted(set(spec["prompt"]))
    full = [rng.choice(pool) for _ in range(n + new)]
    trimmed = full[:system] + full[system + drop:]
    out: dict[str, Any] = {}
    for label, before in (("shifted", cache.arrange), ("reread", None)):
        model.reset()
        for _ in zip(range(1), model.generate(full[:n], temp=0.0, top_k=1)):
            pass
        t = time_tokens(model, trimmed, FIRST_SENTENCE_TOKENS, before)
        out[f"trimmed_{label}_first_sentence_s"] = t.get("first_sentence_s")
    return out


def run_row(spec: dict[str, Any]) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    out = row_llamacpp(spec) if spec["row"] in GGUF_ROWS else row_transformers(spec)
    return {"row": spec["label"], **out, "peak_rss_gib": peak_rss_gib(),
            "load1": round(max(load_before, os.getloadavg()[0]), 2)}


def run_row_process(spec: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if spec.get("llama_cpp_path"):
        # Another llama_cpp build (pip install --target DIR): PYTHONPATH comes before site-packages.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [spec["llama_cpp_path"], env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "bench.cpu_quant", "--row", json.dumps(spec)], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "Error" in line] or ["?"]
        why = f"killed by signal {-proc.returncode} (out of memory?)" if proc.returncode < 0 else errors[-1]
        return {"row": spec["label"], "error": why[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# GGUF files


def build_ggufs(base: str, adapter: str | None, quants: list[str], work: Path) -> dict[str, dict[str, Any]]:
    """Merge + lossless GGUF once, then one llama.cpp quantization per type; reuses files present."""
    from llm.gguf_export import import_llama_cpp, quantize, write_gguf

    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    lossless = work / "merged-bf16.gguf"
    todo = [q for q in quants if not (work / f"model-{q}.gguf").is_file()]
    if todo and not lossless.is_file():
        sw = Stopwatch()
        write_gguf(base, adapter, lossless, name="phi3-shape")
        (work / "merged-bf16.json").write_text(json.dumps({"build_s": round(sw(), 1)}))
    lossless_s = json.loads((work / "merged-bf16.json").read_text())["build_s"] if lossless.is_file() else None
    llama_cpp = import_llama_cpp()
    for q in quants:
        path, info = work / f"model-{q}.gguf", work / f"model-{q}.json"
        if not path.is_file():
            sw = Stopwatch()
            quantize(llama_cpp, lossless, path, q)
            info.write_text(json.dumps({"quantize_s": round(sw(), 1), "lossless_s": lossless_s}))
        meta = json.loads(info.read_text()) if info.is_file() else {}
        build = (meta.get("quantize_s") or 0) + (meta.get("lossless_s") or 0)
        out[q] = {"gguf": str(path), "build_s": round(build, 1) if meta else None}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape-dir", default="/tmp/phi3-shape", help="base/ and adapter/ of the real shape (bench/llm_speed.py builds it)")
    p.add_argument("--work-dir", default="/tmp/phi3-shape-gguf", help="where the GGUF files are built and kept")
    p.add_argument("--rows", default="bf16,int8,q4_0,q4_k_m,q8_0", help=f"bf16, int8 and/or {', '.join(GGUF_ROWS)}")
    p.add_argument("--prompt-tokens", type=int, default=300)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--new-turn-tokens", type=int, default=40,
                   help="llama.cpp rows: a primed turn where only the last N prompt tokens are new (the rest cached)")
    p.add_argument("--history", type=int, default=0,
                   help="llama.cpp rows: also time a trimmed turn after a conversation of N cached tokens (e.g. 1500)")
    p.add_argument("--drop", type=int, default=300, help="with --history: tokens of the oldest exchange dropped")
    p.add_argument("--system-tokens", type=int, default=200, help="with --history: the system prompt before them")
    p.add_argument("--context", type=int, default=2048, help="llama.cpp context size")
    p.add_argument("--llama-cpp-path", help="llama.cpp rows: import llama_cpp from this folder (pip install "
                   "--target DIR), e.g. to compare an AVX2 build with an AVX-512 one")
    p.add_argument("--label-suffix", default="", help="added to each row's label, e.g. the build compared")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--keep-lossless", action="store_true", help="keep the merged bf16 GGUF for later quantizations")
    p.add_argument("--row", help=argparse.SUPPRESS)  # internal: one row, JSON on stdout
    add_json_arg(p)
    args = p.parse_args(argv)
    if args.row:
        print(json.dumps(run_row(json.loads(args.row))))
        return 0
    shape = Path(args.shape_dir)
    base, adapter = str(shape / "base"), str(shape / "adapter") if (shape / "adapter").is_dir() else None
    if not Path(base).is_dir():
        raise SystemExit(f"{base} is missing: build it with bench/llm_speed.py (build_shape) first")
    rows_wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
    if max(args.history, args.prompt_tokens) + max(args.new_tokens, args.new_turn_tokens) > args.context:
        raise SystemExit(f"--context {args.context} is too small for the prompt or --history and the new tokens")
    meta = machine_meta(shape_dir=str(shape), prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens,
                        new_turn_tokens=args.new_turn_tokens, history=args.history, drop=args.drop,
                        system_tokens=args.system_tokens, context=args.context, threads=args.threads,
                        llama_cpp_path=args.llama_cpp_path)
    prompt = prompt_ids(base, args.prompt_tokens)
    ggufs = build_ggufs(base, adapter, [r for r in rows_wanted if r in GGUF_ROWS], Path(args.work_dir))
    if not args.keep_lossless:
        (Path(args.work_dir) / "merged-bf16.gguf").unlink(missing_ok=True)
    labels = {"bf16": "transformers bf16 (merged)", "int8": "torch dynamic int8 (merged)"}
    rows = []
    for name in rows_wanted:
        spec = {"row": name, "label": labels.get(name, f"llama.cpp {name}"), "base": base, "adapter": adapter,
                "prompt": prompt, "new_tokens": args.new_tokens, "threads": args.threads,
                "new_turn_tokens": args.new_turn_tokens, "history": args.history, "drop": args.drop,
                "system_tokens": args.system_tokens, "context": args.context,
                "llama_cpp_path": args.llama_cpp_path, **ggufs.get(name, {})}
        if args.label_suffix:
            spec["label"] += f" ({args.label_suffix})"
        print(f"running {spec['label']} ...", file=sys.stderr, flush=True)
        row = run_row_process(spec)
        if name in ggufs:
            row["build_s"] = ggufs[name]["build_s"]
        rows.append(row)
    bf16 = next((r for r in rows if r["row"].startswith(labels["bf16"]) and "decode_s_per_token" in r), None)
    for r in rows:
        if bf16 and "decode_s_per_token" in r:
            r["speedup_vs_bf16"] = round(bf16["decode_s_per_token"] / r["decode_s_per_token"], 2)
    meta = finish_meta(meta)
    print_table(rows, COLUMNS + [("error", "error")] if any("error" in r for r in rows) else COLUMNS, meta)
    write_json(args.json, meta, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

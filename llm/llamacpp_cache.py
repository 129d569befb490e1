"""The KV-cache plan of llm/kvcache.py carried out on a llama-cpp-python `Llama`: keep, shift, snapshots."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import struct
from pathlib import Path
from typing import Any

from llm.kvcache import Shift, Snapshot, Snapshots, common_prefix, plan

log = logging.getLogger(__name__)

# Saved caches (a story's, while an activity's prompt uses the context): count and bytes. Phi-3-mini's
# f16 cache is ~0.4 MB a token, so a full 1,864-token context is ~0.7 GB.
SNAPSHOTS = 2
SNAPSHOT_BYTES = 1536 << 20
SEQ = 0  # llama-cpp-python's Llama uses one sequence
FILE_MAGIC = b"VSKV1\n"  # a saved cache file: magic, u32 token count, i32 tokens, llama.cpp's bytes


class PromptCache:
    """Arranges one Llama's KV cache (sequence 0) before each prompt; the caller holds the model's lock."""

    def __init__(self, model: Any, llama_cpp: Any, snapshots: Snapshots | None = None):
        self.model, self.lib = model, llama_cpp
        self.snapshots = snapshots or Snapshots(max_items=SNAPSHOTS, max_bytes=SNAPSHOT_BYTES)
        self._save_next = True

    def held(self) -> list[int]:
        """The tokens whose cells the cache holds, in order."""
        return self.model.input_ids[: self.model.n_tokens].tolist()

    def key(self, ids: list[int]) -> str:
        """A name for the cache of these tokens that changes with llama.cpp's version and build."""
        build = f"{getattr(self.lib, '__version__', '?')}|{self.lib.llama_print_system_info()!r}|{self.model.n_ctx()}"
        digest = hashlib.sha256(build.encode() + struct.pack(f"<{len(ids)}i", *ids))
        return digest.hexdigest()[:20]

    def save_file(self, path: Path, keep: int) -> None:
        """Write the cache (e.g. a primed system prompt) to path; keep the `keep` newest such files."""
        tmp = path.with_suffix(".tmp")
        try:
            held = self.held()
            snap = self._save(held)
            with open(tmp, "wb") as f:
                f.write(FILE_MAGIC + struct.pack(f"<I{len(held)}i", len(held), *held))
                f.write(snap.data)
                f.flush()
                os.fsync(f.fileno())  # a kiosk may lose power: never a whole-looking half file
            os.replace(tmp, path)
            for old in sorted(path.parent.glob("prime-*.kv"), key=lambda p: p.stat().st_mtime)[:-keep]:
                old.unlink(missing_ok=True)
        except (OSError, RuntimeError, MemoryError) as err:  # the next start-up computes it again
            log.warning("could not keep the primed prompt in %s: %s", path, err)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def load_file(self, path: Path, ids: list[int]) -> bool:
        """Load a cache written by save_file if it holds exactly these tokens; False when it can't."""
        try:
            raw = bytearray(path.read_bytes())
        except OSError:
            return False
        head = len(FILE_MAGIC) + 4
        try:
            n = struct.unpack_from("<I", raw, len(FILE_MAGIC))[0] if raw.startswith(FILE_MAGIC) else -1
            if n != len(ids) or list(struct.unpack_from(f"<{n}i", raw, head)) != ids:
                return False
        except struct.error:  # cut short
            return False
        try:
            self._load(Snapshot(tuple(ids), memoryview(raw)[head + 4 * n :]))
        except (RuntimeError, ValueError) as err:
            log.warning("%s could not be loaded (%s); computing the prompt", path, err)
            self._clear()
            return False
        try:
            os.utime(path)  # in use: the newest, the last to be pruned
        except OSError:
            pass  # a read-only cache folder: loading is what matters
        return True

    def forget(self) -> None:
        """A new child: drop the saved caches, and do not save the previous conversation on the next prompt."""
        self.snapshots.clear()
        self._save_next = False

    def arrange(self, ids: list[int]) -> int:
        """Make the cache hold as much of this prompt as it cheaply can; the count of tokens it holds."""
        held = self.held()
        step = plan(held, ids, self.snapshots, save=self._save_next)
        self._save_next = True
        if step.save_current:
            try:
                self.snapshots.add(self._save(held))
            except (RuntimeError, MemoryError) as err:  # only a later head start is lost
                log.warning("the llama.cpp cache could not be saved (%s)", err)
        try:
            if step.load is not None:
                self._load(step.load)
            if step.shift is not None:
                self._shift(step.shift)
        except (RuntimeError, OSError, ValueError, MemoryError) as err:
            # Only a head start is lost: start from an empty cache and read the whole prompt.
            log.warning("the llama.cpp cache could not be reused (%s); reading the prompt again", err)
            self._clear()
        return common_prefix(self.held(), ids)

    def _save(self, held: list[int]) -> Snapshot:
        ctx = self.model._ctx.ctx
        size = self.lib.llama_state_seq_get_size(ctx, SEQ)
        buf = (ctypes.c_uint8 * size)()
        n = self.lib.llama_state_seq_get_data(ctx, buf, size, SEQ)
        if not 0 < n <= size:
            raise RuntimeError(f"llama_state_seq_get_data wrote {n} of {size} bytes")
        log.debug("saved a %d-token KV cache (%.0f MB)", len(held), n / 1e6)
        # A view, not a copy: a full Phi-3-mini context is ~0.7 GB.
        return Snapshot(tuple(held), memoryview(buf).cast("B")[:n])

    def _clear(self) -> None:
        """An empty cache: llama-cpp-python's token record and llama.cpp's cells."""
        self.model.reset()
        self.model._ctx.kv_cache_clear()

    def _load(self, snap: Snapshot) -> None:
        self._clear()
        n = len(snap.data)
        data = (ctypes.c_uint8 * n).from_buffer(snap.data)  # a writable view (_save, load_file): no copy
        if self.lib.llama_state_seq_set_data(self.model._ctx.ctx, data, n, SEQ) != n:
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
        ctx.kv_cache_seq_shift(SEQ, end, -1, -shift.dropped)
        ids = self.model.input_ids
        ids[start : n - shift.dropped] = ids[end:n].copy()
        last = n - shift.dropped - 1
        # llama.cpp re-rotates the moved keys (RoPE) at the next decode, and a snapshot saved before
        # then would keep them unrotated: decode the last kept token again now (one token's work).
        ctx.kv_cache_seq_rm(SEQ, last, -1)
        self.model.n_tokens = last
        self.model.eval([int(ids[last])])
        log.debug("dropped %d cached tokens at %d, kept the %d after them", shift.dropped, start, n - end)

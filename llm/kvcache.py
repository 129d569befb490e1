"""Keeping llama.cpp's KV cache useful across prompts: the plan (pure) and saved snapshots.

On a CPU a prompt token costs ~60 ms to compute for Phi-3-mini on 2 cores, so what a turn must
read again decides how long a child waits. Three ways to avoid reading a prompt again:

- the common prefix: the next turn repeats the system prompt and the earlier turns (llama.cpp
  keeps those cells; llama-cpp-python's `generate` already reuses them);
- a shift: when the conversation outgrows `llm.memory_tokens` the oldest exchange is dropped
  from the prompt, which changes everything after the system prompt. The dropped cells are
  removed and the rest moved back (llama.cpp re-rotates their keys), instead of reading up to
  ~1,500 tokens again on every later turn. The kept cells were computed while the dropped
  exchange was in view, so this is close to, not bit-equal with, reading them again: the same
  trade llama.cpp's own server makes when its context fills (StreamingLLM);
- snapshots: a different prompt in between (an activity's question writer, a judge) would
  overwrite the story's cells; the story's are saved first and loaded back for its next turn.

`plan()` decides from token ids alone, so it is tested without a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

# A shift is only trusted when at least this many tokens line up after the dropped span (a chat
# turn's header alone is 2-3 tokens, so a short match could be a coincidence).
MIN_SHIFT_MATCH = 8
# A cache worth saving before it is overwritten: smaller ones cost less to read again than to keep.
MIN_SNAPSHOT_TOKENS = 64
# Loading a snapshot copies up to ~0.7 GB: only worth it when it saves reading this many tokens.
MIN_LOAD_GAIN = 32


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens a and b share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Shift:
    """Remove cached cells [start, start + dropped) and move the later ones back by `dropped`."""

    start: int
    dropped: int
    reused: int  # tokens of the new prompt the cache then holds


def find_shift(cached: Sequence[int], ids: Sequence[int], min_match: int = MIN_SHIFT_MATCH) -> Optional[Shift]:
    """A span of the cache, right after the common prefix, whose removal lines the rest up with the prompt.

    The prompt after trimming is `system + later turns + new turn` where the cache holds
    `system + oldest turns + later turns`; the span is the oldest turns. None when there is none,
    or the match after it is too short to be worth it (or to be sure of).
    """
    start = common_prefix(cached, ids)
    if start >= len(cached) or start >= len(ids):
        return None
    best: Optional[Shift] = None
    head = ids[start]
    for k in range(start + 1, len(cached)):
        if cached[k] != head:
            continue
        match = common_prefix(cached[k:], ids[start:])
        # Most of what follows the span must line up (a re-tokenized reply may differ at its end),
        # so a phrase that merely recurs in the story is never taken for the conversation.
        if match >= max(min_match, (len(cached) - k) // 2) and (best is None or match > best.reused - start):
            best = Shift(start, k - start, start + match)
            if k + match == len(cached):
                break  # the rest of the cache lines up: nothing longer can follow
    return best


def reach(cached: Sequence[int], ids: Sequence[int]) -> tuple[int, Optional[Shift]]:
    """How many tokens of ids this cache can hold (its common prefix, or more after a shift), and the shift."""
    shift = find_shift(cached, ids)
    return (shift.reused, shift) if shift else (common_prefix(cached, ids), None)


@dataclass(frozen=True)
class Snapshot:
    """A saved KV cache: the tokens it holds and llama.cpp's bytes for them (a writable memoryview)."""

    tokens: tuple[int, ...]
    data: Any


class Snapshots:
    """The few most recent saved caches, within a byte budget; the best match for a prompt wins."""

    def __init__(self, max_items: int = 2, max_bytes: int = 1 << 30):
        self.max_items, self.max_bytes = max_items, max_bytes
        self._items: list[Snapshot] = []  # oldest first

    def __len__(self) -> int:
        return len(self._items)

    def add(self, snap: Snapshot) -> None:
        """Keep snap (unless a longer one of the same conversation is kept), dropping the oldest over budget."""
        if len(snap.data) > self.max_bytes:
            return
        if any(_same_line(s.tokens, snap.tokens) and len(s.tokens) >= len(snap.tokens) for s in self._items):
            return
        self._items = [s for s in self._items if not _same_line(s.tokens, snap.tokens)] + [snap]
        while len(self._items) > self.max_items or sum(len(s.data) for s in self._items) > self.max_bytes:
            self._items.pop(0)

    def clear(self) -> None:
        self._items.clear()

    def best(self, ids: Sequence[int]) -> tuple[Optional[Snapshot], Optional[Shift], int]:
        """The snapshot that can hold most of ids (shifted if need be), the shift, and how many tokens."""
        found, shift, length = None, None, 0
        for snap in self._items:
            n, moved = reach(snap.tokens, ids)
            if n > length:
                found, shift, length = snap, moved, n
        return found, shift, length


def _same_line(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether one token list is a prefix of the other (the longer one makes the shorter useless)."""
    n = min(len(a), len(b))
    return a[:n] == b[:n]


@dataclass(frozen=True)
class Plan:
    """What to do with the cache before computing a prompt (save, then load, then shift), and the reuse."""

    reused: int
    shift: Optional[Shift] = None
    save_current: bool = False
    load: Optional[Snapshot] = None


def plan(cached: Sequence[int], ids: Sequence[int], snapshots: Snapshots, save: bool = True) -> Plan:
    """The cheapest way to hold as much of ids as possible: keep, shift, or load a snapshot (and shift it).

    The current cache is saved first when most of it is about to be overwritten (unless `save` is
    False: a new child's session, whose predecessor's story is not wanted back).
    """
    keep = common_prefix(cached, ids)
    here, shift = reach(cached, ids)
    worth_saving = save and len(cached) >= MIN_SNAPSHOT_TOKENS
    snap, snap_shift, there = snapshots.best(ids)
    if snap is not None and there >= here + MIN_LOAD_GAIN:
        return Plan(there, shift=snap_shift, save_current=worth_saving and keep < len(cached) // 2, load=snap)
    return Plan(here, shift=shift, save_current=worth_saving and shift is None and here < len(cached) // 2)

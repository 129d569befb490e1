"""Scripted stand-ins for tests where the real part is not the thing under test."""

from __future__ import annotations

import threading
from typing import Iterator

from llm.backends import Backend


class ScriptedBackend(Backend):
    """A model whose replies are scripted: enqueue(["Once upon", " a time."]) streams those pieces."""

    description = "scripted test model"
    fine_tuned = False
    context_tokens = 4096

    def __init__(self, replies: list[list[str]] | None = None, words_per_token: float = 1.0):
        self.replies = list(replies or [])
        self.prompts: list[list[dict[str, str]]] = []  # every message list the model was given
        self.streamed = 0  # pieces handed out, to check cancellation bounds
        self.on_piece = None  # optional callback(piece_index) run before each piece is yielded
        self.words_per_token = words_per_token

    def enqueue(self, pieces: list[str]) -> None:
        """Script the next reply."""
        self.replies.append(pieces)

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Words stand in for tokens."""
        return int(sum(len(m["content"].split()) + 3 for m in messages) / self.words_per_token)

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """Yield the next scripted reply piece by piece, stopping at cancel like a real backend."""
        self.prompts.append(messages)
        pieces = self.replies.pop(0) if self.replies else ["The end."]
        for i, piece in enumerate(pieces):
            if cancel.is_set():
                return
            if self.on_piece:
                self.on_piece(i)
            self.streamed += 1
            yield piece

"""A model server shared by many kiosks: any OpenAI-compatible chat endpoint (vLLM with the Phi-Ed LoRA, TGI, llama.cpp, Ollama)."""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
from typing import Any, Iterator, Optional
from urllib.parse import urlsplit

from errors import ModelError
from llm.backends import Backend

log = logging.getLogger(__name__)


class OpenAICompatBackend(Backend):
    """Streams /chat/completions over server-sent events; cancelling closes the connection."""

    def __init__(self, llm: Any, repetition_penalty: float):
        if not llm.server_url:
            raise ModelError("llm.backend: openai needs llm.server_url, e.g. http://model-server:8000/v1")
        self.llm = llm
        self.url = urlsplit(llm.server_url.rstrip("/"))
        if self.url.scheme not in ("http", "https") or not self.url.hostname:
            raise ModelError(f"llm.server_url must be an http(s) URL (got {llm.server_url!r})")
        self.repetition_penalty = repetition_penalty
        self.key = os.environ.get(llm.server_key_env) or None
        self.description = f"{llm.server_model} at {llm.server_url} (OpenAI-compatible server)"
        # Served under the LoRA's name (vLLM --lora-modules phi-ed=...), the fine-tune is applied.
        self.fine_tuned = llm.server_model == "phi-ed"
        self.context_tokens = None  # the server's --max-model-len; it refuses what does not fit

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Estimate prompt tokens without the tokenizer: about 4 characters a token in these languages."""
        return sum(len(m["content"]) // 4 + 4 for m in messages)

    def _connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        return cls(self.url.hostname, self.url.port, timeout=self.llm.timeout_s)

    def _open(self, body: bytes) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """POST the request, retrying refused connections and busy servers with a growing pause."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last: Optional[BaseException] = None
        for attempt in range(self.llm.retries + 1):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
            conn = self._connect()
            try:
                conn.request("POST", f"{self.url.path}/chat/completions", body=body, headers=headers)
                resp = conn.getresponse()
            except OSError as err:  # refused, reset, timed out: the server may be restarting
                conn.close()
                last = err
                log.warning("model server %s: %s (attempt %d of %d)", self.llm.server_url, err, attempt + 1, self.llm.retries + 1)
                continue
            if resp.status == 200:
                return conn, resp
            detail = resp.read(300).decode("utf-8", "replace")
            conn.close()
            last = ModelError(f"HTTP {resp.status}: {detail.strip()}")
            if resp.status not in (429, 500, 502, 503, 504):
                break  # a wrong model name or key will not get better by asking again
            log.warning("model server %s: HTTP %d (attempt %d of %d)", self.llm.server_url, resp.status, attempt + 1, self.llm.retries + 1)
        raise ModelError(f"the model server at {self.llm.server_url} failed: {last}. Is it running and serving "
                         f"'{self.llm.server_model}'? (llm.server_url, llm.server_model)") from last

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """Yield the reply as the server streams it; on cancel the connection is closed, so the server stops."""
        sampling = self.llm.temperature > 0
        request = {"model": self.llm.server_model, "messages": messages, "stream": True,
                   "max_tokens": self.llm.max_new_tokens, "temperature": self.llm.temperature if sampling else 0.0,
                   "top_p": self.llm.top_p if sampling else 1.0, "repetition_penalty": self.repetition_penalty}
        if self.llm.seed is not None:
            request["seed"] = self.llm.seed
        conn, resp = self._open(json.dumps(request).encode())
        try:
            while not cancel.is_set():
                try:
                    line = resp.readline()
                except OSError as err:
                    raise ModelError(f"the model server at {self.llm.server_url} stopped mid-reply: {err}") from err
                if not line:
                    raise ModelError(f"the model server at {self.llm.server_url} closed the stream mid-reply")
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                choices = json.loads(data).get("choices") or []
                if choices:
                    yield (choices[0].get("delta") or {}).get("content") or ""
        finally:
            conn.close()  # also on cancel or an abandoned turn: the server stops generating for us


class FallbackBackend(Backend):
    """The server first; when it cannot be reached, this turn is told by the local model instead."""

    def __init__(self, primary: Any, make_fallback: Any):
        self.primary, self._make_fallback = primary, make_fallback
        self._fallback: Any = None
        self._lock = threading.Lock()
        self.description = f"{primary.description}, falling back to the local model"
        self.fine_tuned = primary.fine_tuned
        self.context_tokens = primary.context_tokens

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """The server's estimate (the same prompt goes to either)."""
        return self.primary.count_tokens(messages)

    def forget(self) -> None:
        """A new child: the server and, once loaded, the local model forget the conversation."""
        self.primary.forget()
        if self._fallback is not None:
            self._fallback.forget()

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """The server's reply, or the local model's when the server fails before its first piece."""
        started = False
        try:
            for piece in self.primary.stream(messages, cancel):
                started = True
                yield piece
            return
        except ModelError as err:
            if started:
                raise
            log.warning("%s; this turn uses the local model", err)
        with self._lock:
            if self._fallback is None:
                self._fallback = self._make_fallback()  # loaded on first need: it costs memory and seconds
        yield from self._fallback.stream(messages, cancel)

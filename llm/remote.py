"""Remote fallback: Hugging Face's hosted base Phi-3-mini (no Phi-Ed fine-tune), streamed."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterator

from errors import ModelError
from llm.backends import Backend

log = logging.getLogger(__name__)


class HFInferenceBackend(Backend):
    """Stream chat completions from Hugging Face's Inference API (or any endpoint at hf_base_url)."""

    fine_tuned = False
    context_tokens = None  # the hosted service's own limit

    def __init__(self, llm: Any, repetition_penalty: float):
        from huggingface_hub import InferenceClient

        self.llm = llm
        token = os.environ.get(llm.hf_token_env) or None
        if llm.hf_base_url:
            self.client = InferenceClient(base_url=llm.hf_base_url, token=token, timeout=llm.timeout_s)
        else:
            self.client = InferenceClient(model=llm.hf_model, token=token, timeout=llm.timeout_s)
        self.description = f"{llm.hf_model} (hosted by Hugging Face{' at ' + llm.hf_base_url if llm.hf_base_url else ''})"

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """Estimate prompt tokens without the tokenizer: about 4 characters a token in these languages."""
        return sum(len(m["content"]) // 4 + 4 for m in messages)

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """Yield the reply as the server streams it; closing the HTTP stream on cancel."""
        sampling = self.llm.temperature > 0
        try:
            chunks = self.client.chat_completion(
                messages,
                model=self.llm.hf_model,
                stream=True,
                max_tokens=self.llm.max_new_tokens,
                temperature=self.llm.temperature if sampling else 0.0,
                top_p=self.llm.top_p if sampling else None,
                seed=self.llm.seed,
            )
            try:
                for chunk in chunks:
                    if not chunk.choices:
                        continue
                    yield chunk.choices[0].delta.content or ""
                    if cancel.is_set():
                        break
            finally:
                close = getattr(chunks, "close", None)
                if close:
                    close()  # ends the HTTP response, so the server stops generating
        except ModelError:
            raise
        except Exception as err:  # noqa: BLE001 - network, HTTP and protocol errors alike
            raise ModelError(
                f"the hosted model {self.llm.hf_model} failed: {err}. Check the network and "
                f"{self.llm.hf_token_env}, or use llm.backend: local"
            ) from err

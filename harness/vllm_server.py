"""Start and stop a local vLLM OpenAI-compatible server (CPU build in .venv-vllm) for tests and benches.

    server = VLLMServer(base_dir, adapter_dir, log_path)   # serves "base" and the LoRA as "phi-ed"
    server.start(timeout_s=180); ...; server.stop()

The same command a school's GPU server runs (README, "Many kiosks, one model server"), with the CPU
settings of /work/shared/recipes.md ("vLLM on CPU"): float32, a 1 GiB KV cache, offline. vLLM on
CPU rejects some attention head sizes (16 fails, Phi-3's 96 works); the tiny test model has 96.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
LORA_NAME = "phi-ed"


def vllm_installed() -> bool:
    """Whether scripts/install.sh made .venv-vllm (it is separate: vLLM pins its own packages)."""
    return VLLM_PYTHON.is_file()


def never_stopping_copy(base: Path, dest: Path, context: int = 4608) -> Path:
    """The base model with its stop tokens switched off and a longer context: replies run to max_tokens.

    The tiny model writes its whole story in well under a second, and on a busy 2-core machine the
    API server can hand the stream on in bursts, so a cancel or a kill may come after vLLM has
    finished. A reply of thousands of tokens (over ten seconds) makes "stopped mid-reply" certain.
    Weights and tokenizer are links to the base; the end-of-text token (tokenizer_config.json,
    generation_config.json) becomes <unk>, which it never writes, and config.json allows `context`
    positions (what it writes past its trained 512 is noise: only the length matters here).
    """
    base, dest = Path(base), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    unk = next(t["id"] for t in json.loads((base / "tokenizer.json").read_text())["added_tokens"] if t["content"] == "<unk>")
    for item in base.iterdir():
        target = dest / item.name
        if target.exists() or target.is_symlink():
            continue
        if item.name == "config.json":
            target.write_text(json.dumps({**json.loads(item.read_text()), "max_position_embeddings": context}, indent=2))
        elif item.name == "tokenizer_config.json":
            target.write_text(json.dumps({**json.loads(item.read_text()), "eos_token": "<unk>"}, indent=2))
        elif item.name == "generation_config.json":
            target.write_text(json.dumps({**json.loads(item.read_text()), "eos_token_id": unk}, indent=2))
        else:
            target.symlink_to(item.resolve())
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lora_rank(adapter: Path) -> int:
    """The adapter's rank (vLLM's --max-lora-rank must be at least this)."""
    config = json.loads((Path(adapter) / "adapter_config.json").read_text())
    return max([int(config["r"]), *map(int, (config.get("rank_pattern") or {}).values())])


class VLLMServer:
    """One vLLM api_server process (and its engine process) in its own process group."""

    def __init__(self, base: Path, adapter: Path, log_path: Path, port: Optional[int] = None,
                 max_model_len: int = 512, extra_args: tuple[str, ...] = (), env: Optional[dict[str, str]] = None):
        self.base, self.adapter, self.log_path = Path(base), Path(adapter), Path(log_path)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.cmd = [
            str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.base), "--served-model-name", "base",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--max-model-len", str(max_model_len), "--dtype", "float32",
            "--enable-lora", "--lora-modules", f"{LORA_NAME}={self.adapter}",
            "--max-lora-rank", str(lora_rank(self.adapter)), *extra_args,
        ]
        self.env = {"VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", **(env or {})}
        self.proc: Optional[subprocess.Popen] = None
        self.startup_s: Optional[float] = None
        self._t0 = 0.0

    def launch(self) -> "VLLMServer":
        """Start the process (it takes 25-40 s on 2 cores to serve: see wait_ready)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._t0 = time.monotonic()
        with open(self.log_path, "wb") as log:
            # A new session: its process group holds the engine process too, so stop() ends both.
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                         cwd=str(ROOT), start_new_session=True)
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> "VLLMServer":
        """Wait until /v1/models lists the adapter; stop the server and raise with the log's tail if it does not."""
        assert self.proc is not None, "launch() first"
        while time.monotonic() - self._t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with code {self.proc.returncode} while starting:\n{self.log_tail()}")
            if LORA_NAME in self.models():
                self.startup_s = time.monotonic() - self._t0
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"vLLM was not up after {timeout_s:.0f} s:\n{self.log_tail()}")

    def start(self, timeout_s: float = 180.0) -> "VLLMServer":
        """Start the server and wait until it serves."""
        return self.launch().wait_ready(timeout_s)

    def models(self) -> list[str]:
        """The served model names, or [] when the server does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as resp:
                return [m["id"] for m in json.load(resp)["data"]]
        except (OSError, ValueError, KeyError):
            return []

    def metrics(self) -> str:
        """The Prometheus text of /metrics ("" when the server does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the API server and its engine process)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after grace_s."""
        if self.proc is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the engine process may outlive its parent
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()

    def __enter__(self) -> "VLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

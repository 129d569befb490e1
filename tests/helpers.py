"""Helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_main(*args: str, stdin: str = "", env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python main.py ARGS` as a user would, returning its exit code and output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=full_env,
    )

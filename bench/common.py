"""Shared helpers for the bench scripts: machine description, table printing, JSON output, progress.

Every bench script prints a plain-text table and, with `--json PATH`, writes
{"meta": {...}, "rows": [...]} so results from different scripts and machines line up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

GIB = 1024**3
# A load average above this share of the cores means other work competed for the CPU: the figures
# are then upper bounds, and the meta says so.
BUSY_LOAD_PER_CORE = 0.5


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what platform knows elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    # Package metadata, not imports: importing torch alone takes seconds.
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "faster-whisper", "openai-whisper"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_meta(**extra: Any) -> dict[str, Any]:
    """Machine and run description: CPU, cores, RAM, library versions, date, load average at start."""
    import psutil

    mem = psutil.virtual_memory()
    load = os.getloadavg()
    cores = os.cpu_count() or 1
    meta: dict[str, Any] = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {cpu_model()}",
        "cores": cores,
        "ram_gib": round(mem.total / GIB, 1),
        "ram_available_gib_at_start": round(mem.available / GIB, 1),
        "loadavg_at_start": [round(x, 2) for x in load],
        "busy_at_start": load[0] > BUSY_LOAD_PER_CORE * cores,
        **_versions(),
    }
    meta.update(extra)
    return meta


def finish_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Add the load average at the end; a busy machine makes every figure an upper bound."""
    load = os.getloadavg()
    meta["loadavg_at_end"] = [round(x, 2) for x in load]
    cores = meta.get("cores") or os.cpu_count() or 1
    meta["busy_at_end"] = load[0] > BUSY_LOAD_PER_CORE * cores
    if meta.get("busy_at_start") or meta["busy_at_end"]:
        meta["note"] = (meta.get("note", "") + " " if meta.get("note") else "") + (
            "other work loaded the CPU during this run: timings are upper bounds"
        )
    return meta


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    """The --json PATH option every bench script has."""
    parser.add_argument("--json", metavar="PATH", help='also write {"meta": ..., "rows": [...]} to PATH')


def write_json(path: str | None, meta: dict[str, Any], rows: Sequence[dict[str, Any]], **extra: Any) -> None:
    """Write the results (and any extra top-level keys, e.g. raw samples) as JSON when a path was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"meta": meta, "rows": list(rows), **extra}, indent=2) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """A plain-text table: columns are (row key, header); text is left-aligned, numbers right-aligned."""
    cells = [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max([len(head)] + [len(r[i]) for r in cells]) for i, (_, head) in enumerate(columns)]
    numeric = [all(isinstance(row.get(key), (int, float)) or row.get(key) is None for row in rows) for key, _ in columns]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(parts).rstrip()

    out = [line([head for _, head in columns]), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], meta: dict | None = None) -> None:
    """Print the table (and the meta as one line) on standard output."""
    print(format_table(rows, columns))
    if meta is not None:
        print(meta)


def progress(iterable: Iterable, desc: str, total: int | None = None):
    """A tqdm progress bar on standard error; silent when stderr is not a terminal (CI, tests)."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, disable=None, leave=False)


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far, in GiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2)


class Stopwatch:
    """Seconds since creation, on the monotonic clock."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0

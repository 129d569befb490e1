"""Shared fixtures: the tiny offline models are built once per test session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from safety.privacy import no_telemetry

ROOT = Path(__file__).resolve().parent.parent
# Nothing in the tests may reach the Hugging Face hub: fail fast instead of retrying for a minute.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
no_telemetry()  # nor may they leave usage data behind (the app switches it off the same way)


# Fixtures that load a model, start a server or a sound server, or drive a browser: a test that
# uses one is an integration test. Every other test is a unit test unless marked integration.
HEAVY_FIXTURES = frozenset({"tiny", "pulse", "servers", "vllm", "endless", "encoder", "trained", "espeak", "results",
                            "kiosk", "starter", "whisper", "piper"})


def pytest_collection_modifyitems(config, items):
    """Mark the fast tests `unit` (pytest -m unit: the quick loop while working; the full suite is CI's)."""
    for item in items:
        if item.get_closest_marker("integration") is None and not HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """A folder with the tiny Phi-3 base, its LoRA adapter and config.yaml (scripts/make_tiny_models.py)."""
    cached = os.environ.get("TINY_MODELS_DIR")  # reuse a built folder when iterating locally
    if cached and (Path(cached) / "config.yaml").is_file():
        return Path(cached)
    out = tmp_path_factory.mktemp("tiny")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tiny_models.py"), str(out)], check=True, cwd=ROOT)
    return out


def _pactl_ok() -> bool:
    return subprocess.run(["pactl", "info"], capture_output=True).returncode == 0


def _wait_until(predicate, seconds: float = 10.0) -> bool:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def start_sound_server() -> bool:
    """PulseAudio with the kiosk's virtual devices, set as defaults; True if a daemon had to be started.

    kiosk_out is the speaker (record it from kiosk_out.monitor); what is played into
    kiosk_mic_feed is heard on the kiosk_mic source. Safe to call again: what exists is kept.
    """
    started = not _pactl_ok()
    if started:
        subprocess.run(
            ["pulseaudio", "-D", "--exit-idle-time=-1", "--disallow-exit", "-n",
             "--load=module-native-protocol-unix", "--load=module-always-sink"],
            check=True, capture_output=True,
        )
        _wait_until(_pactl_ok, 5.0)

    def names(kind):
        # Exact names (column 2): "kiosk_mic" is a prefix of "kiosk_mic_feed.monitor", so a
        # substring test would skip creating the microphone on a fresh daemon.
        listing = subprocess.run(["pactl", "list", "short", kind], capture_output=True, text=True).stdout
        return {line.split("\t")[1] for line in listing.splitlines() if "\t" in line}

    for module, args in [
        ("module-null-sink", "sink_name=kiosk_out"),
        ("module-null-sink", "sink_name=kiosk_mic_feed"),
        ("module-remap-source", "source_name=kiosk_mic master=kiosk_mic_feed.monitor"),
    ]:
        name = args.split()[0].split("=")[1]
        if name not in names("sinks") | names("sources"):
            subprocess.run(["pactl", "load-module", module, *args.split()], check=True, capture_output=True)
    subprocess.run(["pactl", "set-default-sink", "kiosk_out"], check=True)
    subprocess.run(["pactl", "set-default-source", "kiosk_mic"], check=True)
    return started


def stop_sound_server() -> None:
    """End the PulseAudio daemon, as a crash or a restart would (`pactl exit` is refused: --disallow-exit)."""
    subprocess.run(["pulseaudio", "--kill"], capture_output=True)
    if not _wait_until(lambda: not _pactl_ok(), 10.0):
        raise RuntimeError("PulseAudio did not stop")


@pytest.fixture(scope="session")
def pulse():
    """Real PortAudio devices without hardware: PulseAudio null sinks (kiosk_out speaker, kiosk_mic microphone).

    What is played to kiosk_out can be recorded from kiosk_out.monitor; what is played into
    kiosk_mic_feed is heard on the kiosk_mic source. A test may restart the daemon; it then
    calls start_sound_server() again, which leaves it as this fixture does.
    """
    import shutil

    if not shutil.which("pulseaudio"):
        pytest.skip("PulseAudio is not installed (scripts/install.sh installs it)")
    started = start_sound_server()
    yield "pulse"
    if started:
        stop_sound_server()


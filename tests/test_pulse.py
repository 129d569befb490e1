"""listen.echo_cancel: system — PulseAudio's module-echo-cancel found or loaded, the app's streams routed through it."""

import subprocess

import pytest

from audio.echo import EchoError
from audio.pulse import DRIVER, SINK, SOURCE, PulseEchoCancel


class Pactl:
    """pactl as a script: the listings it answers, and every command it was given."""

    def __init__(self, sources="", sinks="", fail=None):
        self.listings = {"sources": sources, "sinks": sinks}
        self.calls, self.fail = [], fail

    def __call__(self, args):
        self.calls.append(args)
        if self.fail and args[0] == self.fail:
            raise EchoError(f"pactl {args[0]}: Module initialization failed")
        if args[:2] == ["list", "short"]:
            return self.listings[args[2]]
        return {"get-default-source": "mic\n", "get-default-sink": "speaker\n", "load-module": "42\n"}.get(args[0], "")


def test_loads_the_canceller_over_the_default_devices_and_routes_this_process_only():
    pactl, env = Pactl(sources="1\tmic\tmodule-alsa-card.c\ts16le 1ch 16000Hz\tIDLE\n"), {"PULSE_SINK": "before"}
    with PulseEchoCancel(run=pactl, environ=env) as ec:
        assert env == {"PULSE_SOURCE": SOURCE, "PULSE_SINK": SINK}
        load = next(c for c in pactl.calls if c[0] == "load-module")
        assert "source_master=mic" in load and "sink_master=speaker" in load and "aec_method=webrtc" in load
        # The gain control would move the kiosk's microphone volume for every program after the app.
        assert any("analog_gain_control=0" in a and "noise_suppression=0" in a for a in load)
        assert ec.module == "42"
    assert env == {"PULSE_SINK": "before"}  # put back as it was
    assert pactl.calls[-1] == ["unload-module", "42"]


def test_a_canceller_already_running_is_used_and_left_running():
    pactl, env = Pactl(sources=f"7\tmic.echo-cancel\t{DRIVER}\tfloat32le 1ch 32000Hz\tIDLE\n",
                       sinks=f"8\tspeaker.echo-cancel\t{DRIVER}\tfloat32le 1ch 32000Hz\tIDLE\n"), {}
    with PulseEchoCancel(run=pactl, environ=env):
        assert env == {"PULSE_SOURCE": "mic.echo-cancel", "PULSE_SINK": "speaker.echo-cancel"}
    assert env == {}
    assert not any(c[0] in ("load-module", "unload-module") for c in pactl.calls)


def test_noise_suppression_is_asked_of_the_module():
    pactl = Pactl()
    PulseEchoCancel(noise_suppression=True, run=pactl, environ={}).open()
    assert any("noise_suppression=1" in a for a in next(c for c in pactl.calls if c[0] == "load-module"))


def test_a_module_that_will_not_load_is_one_clear_error_and_routes_nothing():
    env = {}
    with pytest.raises(EchoError, match="Module initialization failed"):
        PulseEchoCancel(run=Pactl(fail="load-module"), environ=env).open()
    assert env == {}


def test_echo_cancel_system_falls_back_to_half_duplex_where_it_cannot_run(caplog, monkeypatch):
    import main
    from settings import Settings

    monkeypatch.setattr("audio.pulse.PulseEchoCancel.open", lambda self: (_ for _ in ()).throw(EchoError("no PulseAudio")))
    settings = Settings.model_validate({"listen": {"echo_cancel": "system"}})
    args = main.parse_args([])
    with caplog.at_level("WARNING"):
        after, echo = main.start_echo_cancel(settings, args)
    assert echo is None and after.listen.echo_cancel == "off"
    assert "no echo cancellation (no PulseAudio): barge-in off (half-duplex)" in caplog.text


def test_the_real_module_is_loaded_routes_and_is_gone_after(pulse):
    def names(kind):
        out = subprocess.run(["pactl", "list", "short", kind], capture_output=True, text=True).stdout
        return {line.split("\t")[1] for line in out.splitlines()}

    env = {}
    with PulseEchoCancel(environ=env) as ec:
        assert ec.source in names("sources") and ec.sink in names("sinks")
        assert env == {"PULSE_SOURCE": SOURCE, "PULSE_SINK": SINK}
        volume = subprocess.run(["pactl", "get-source-volume", "kiosk_mic"], capture_output=True, text=True).stdout
    assert SOURCE not in names("sources") and SINK not in names("sinks")
    assert "100%" in volume  # no gain control moving the microphone


def test_the_far_end_is_the_monitor_of_the_sink_this_process_plays_to():
    from audio.pulse import find_monitor

    pactl = Pactl(sources="1\tspeaker.monitor\tmodule-alsa-card.c\ts16le 2ch 48000Hz\tIDLE\n"
                          f"2\t{SINK}.monitor\t{DRIVER}\tfloat32le 1ch 32000Hz\tIDLE\n")
    assert find_monitor(run=pactl, environ={}) == "speaker.monitor"
    assert find_monitor(run=pactl, environ={"PULSE_SINK": SINK}) == f"{SINK}.monitor"
    with pytest.raises(EchoError, match="no monitor of the speaker 'elsewhere'"):
        find_monitor(run=pactl, environ={"PULSE_SINK": "elsewhere"})


def test_without_pactl_the_error_says_what_to_install(monkeypatch):
    from audio import pulse

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EchoError, match="pactl is not installed"):
        pulse.find_monitor(environ={})

"""Faults at the speaker's end: a lost output device, shutdown mid-sentence, a wav that cannot be written.

None of them may silence the kiosk or end the session: the device is reopened with a growing
pause, close() never closes a device or a file under a thread still writing to it, and the wav
recording goes on (and stays a valid file) whatever happens to its folder.
"""

import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from audio.devices import WAV_RETRY_S, DeviceOutput, WavRecorder
from audio.speak import Backoff, Speaker
from errors import ConfigError, SpeechError
from events import ErrorEvent, EventBus, SpeakEnd, SpeakStopped, TurnEnd, WordSpoken
from tests.conftest import start_sound_server, stop_sound_server
from tests.helpers import ROOT, wait_for
from tests.test_speak import PacedOutput, ToneSynth

RATE = 16000  # ToneSynth's rate: 0.1 s of tone per word


def record_events(bus):
    log = []
    bus.subscribe(log.append)
    return log


def named(log, kind):
    return [e for e in log if isinstance(e, kind)]


def lines(caplog, text):
    return [r for r in caplog.records if text in r.getMessage()]


def sentence(words):
    return " ".join(["word"] * words)


class FakeClock:
    """Time that moves only when the test says, so back-off pauses need no waiting."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class FlakyOutput(PacedOutput):
    """A device that can be unplugged: while `down`, writes fail as PortAudio's do and the quiet test says why."""

    def __init__(self, fail_after_blocks=None):
        super().__init__()
        self.down = False
        self.attempts = 0  # writes tried, failed or not
        self.fail_after_blocks = fail_after_blocks  # goes down by itself after this many blocks

    def write(self, block, rate):
        self.attempts += 1
        if self.fail_after_blocks is not None and self.attempts > self.fail_after_blocks:
            self.down = True
        if self.down:
            raise SpeechError("the audio output failed (Input/output error)")
        self.sample_rate = rate
        self.samples_written += len(block)  # not paced: these tests are about what is tried, not timing

    def available(self):
        return "Connection refused" if self.down else None


def test_a_lost_speaker_is_said_once_retried_with_backoff_and_comes_back(caplog):
    caplog.set_level(logging.INFO, logger="audio.speak")
    clock = FakeClock()
    out = FlakyOutput()
    bus = EventBus()
    log = record_events(bus)
    speaker = Speaker(ToneSynth(), bus, output=out, clock=clock, retry=Backoff(clock, first_s=0.5, max_s=2.0)).start()
    speaker.say("The fox ran.")
    assert speaker.wait_idle(timeout=5)
    out.down = True
    speaker.say("Then the fox hid.")  # fails on its first block: the speaker is lost
    assert speaker.wait_idle(timeout=5)
    tried = out.attempts
    for i in range(5):  # the pause is not over: dropped at once, the device is not even tried
        speaker.say(f"Sentence {i} while the speaker is gone.")
        assert speaker.wait_idle(timeout=5)
    assert out.attempts == tried
    clock.advance(0.5)  # the pause is over, but the quiet test says the device is still gone
    speaker.say("Still nobody hears this.")
    assert speaker.wait_idle(timeout=5)
    assert out.attempts == tried  # no PortAudio open (and its page of stderr) while the test fails
    clock.advance(0.6)  # the second pause is longer (1 s): not yet
    out.down = False
    speaker.say("Too early to try again.")
    assert speaker.wait_idle(timeout=5)
    assert out.attempts == tried
    clock.advance(0.5)
    speaker.say("The fox came back.")
    assert speaker.wait_idle(timeout=5)
    speaker.close()
    ends = [e.text for e in named(log, SpeakEnd)]
    assert ends == ["The fox ran.", "The fox came back."]
    stopped = named(log, SpeakStopped)
    assert len(stopped) == 8 and all(e.reason == "speaker" and e.played_s == 0.0 for e in stopped)
    assert len(lines(caplog, "speaker lost")) == 1
    assert lines(caplog, "speaker lost")[0].getMessage() == "speaker lost: Connection refused; retrying"
    assert len(lines(caplog, "speaker back")) == 1
    assert [e.stage for e in named(log, ErrorEvent)] == ["speaker"]


def test_turn_end_tells_how_many_sentences_were_really_heard():
    from llm.storyteller import Storyteller
    from pipeline import Session
    from turn import Stages
    from tests.fakes import ScriptedBackend

    bus = EventBus()
    log = record_events(bus)
    out = FlakyOutput(fail_after_blocks=5)  # "One." is five 20 ms blocks; then the device dies
    speaker = Speaker(ToneSynth(), bus, output=out).start()
    teller = Storyteller(ScriptedBackend([["One. ", "Two words. ", "Three more words."]]), "Early Elementary", "en", 800, 30)
    session = Session(Stages(teller, bus, show=lambda text: None, speaker=speaker))
    end = session.run_turn("Tell me a story")
    speaker.close()
    assert end.sentences == 3 and end.sentences_played == 1
    assert named(log, TurnEnd)[0].sentences_played == 1
    assert [e.text for e in named(log, SpeakStopped)] == ["Two words.", "Three more words."]


def record_monitor(path):
    return subprocess.Popen(["parecord", "--device=kiosk_out.monitor", "--file-format=wav", "--rate=16000",
                             "--channels=1", str(path)], stderr=subprocess.DEVNULL)


def stop_recording(recorder):
    recorder.terminate()
    recorder.wait(5)


def test_the_speaker_comes_back_after_the_sound_server_restarts(pulse, tmp_path, caplog, capfd):
    """PulseAudio killed mid-sentence and started again: the next sentence is heard on the speaker's monitor."""
    caplog.set_level(logging.INFO, logger="audio.speak")
    bus = EventBus()
    log = record_events(bus)
    out = DeviceOutput("pulse")
    speaker = Speaker(ToneSynth(), bus, output=out, retry=Backoff(time.monotonic, first_s=0.05, max_s=0.2)).start()
    restarted = False
    try:
        speaker.say(sentence(40))  # 4 s
        # Word events come on the sample clock: the fifth means 0.4 s have been played.
        assert wait_for(lambda: len(named(log, WordSpoken)) >= 5, 20)
        stop_sound_server()
        restarted = True
        assert speaker.wait_idle(timeout=15), "the sentence cut by the restart never ended"
        time.sleep(0.1)  # past the first pause: the next sentence tries the device, which is still gone
        speaker.say("Nobody hears this sentence.")
        assert speaker.wait_idle(timeout=15)
        start_sound_server()
        restarted = False
        heard = tmp_path / "monitor.wav"
        recorder = record_monitor(heard)
        try:
            time.sleep(0.7)  # parecord connects; the back-off pause (at most 0.2 s) is over
            speaker.say(sentence(15))
            assert speaker.wait_idle(timeout=15)
            time.sleep(0.3)
        finally:
            stop_recording(recorder)
    finally:
        speaker.close()
        if restarted:
            start_sound_server()  # later tests need the devices the pulse fixture made
    stopped = named(log, SpeakStopped)
    assert stopped[0].text == sentence(40) and stopped[0].reason == "speaker"
    assert 0.4 <= stopped[0].played_s < 4.0  # what had really been played when the server died
    assert stopped[1].text == "Nobody hears this sentence." and stopped[1].played_s == 0.0
    assert named(log, SpeakEnd)[-1].text == sentence(15)
    assert [e.stage for e in named(log, ErrorEvent)] == ["speaker"]
    assert len(lines(caplog, "speaker lost")) == 1 and len(lines(caplog, "speaker back")) == 1
    data, rate = sf.read(heard)
    assert rate == 16000 and np.abs(data).max() > 0.05, "the speaker's monitor heard nothing"
    loud = np.flatnonzero(np.abs(data) > 0.05)
    assert (loud[-1] - loud[0]) / rate > 0.5  # most of the 1.5 s sentence, not a click
    assert "ALSA lib" not in capfd.readouterr().err  # alsa-lib's own messages stay off stderr
    assert "kiosk_out" in subprocess.run(["pactl", "info"], capture_output=True, text=True).stdout


class WatchedOutput(PacedOutput):
    """A real-time device stand-in that notes whether close() ever came while a write was in progress."""

    def __init__(self):
        super().__init__()
        self.writing = False
        self.closed_under_writer = None

    def write(self, block, rate):
        self.writing = True
        try:
            super().write(block, rate)
        finally:
            self.writing = False

    def close(self):
        self.closed_under_writer = self.writing


class WatchedRecorder(WavRecorder):
    """The real wav recorder, noting whether close() came while a write was in progress."""

    def __init__(self, path):
        super().__init__(path)
        self.writing = False
        self.closed_under_writer = None

    def write(self, block, rate):
        self.writing = True
        try:
            super().write(block, rate)
        finally:
            self.writing = False

    def close(self, wait_s=1.0):
        self.closed_under_writer = self.writing
        return super().close(wait_s)


@pytest.mark.integration
def test_close_mid_sentence_joins_both_threads_before_closing_the_device_and_the_wav(tmp_path):
    bus = EventBus()
    log = record_events(bus)
    out, recorder = WatchedOutput(), WatchedRecorder(str(tmp_path / "out.wav"))
    speaker = Speaker(ToneSynth(), bus, output=out, recorder=recorder).start()
    speaker.say(sentence(40))
    speaker.say("Queued behind it.")
    assert wait_for(lambda: out.samples_written > 1.5 * RATE, 10)
    # Mid-write: the recording is already a valid wav (its header is kept up to date).
    assert sf.info(recorder.path).duration >= 0.5
    began = time.monotonic()
    speaker.close()
    assert time.monotonic() - began < 3.0  # generous: the loop ends within a 20 ms block
    assert not speaker._play_thread.is_alive() and not speaker._synth_thread.is_alive()
    assert out.closed_under_writer is False and recorder.closed_under_writer is False
    speaker.close()  # again: nothing happens
    speaker.say("After the end.")
    assert speaker.wait_idle(timeout=1)
    data, rate = sf.read(recorder.path)
    assert rate == RATE and 1.4 < len(data) / rate < 4.0
    assert [e.text for e in named(log, SpeakStopped)] == [sentence(40)]
    assert not [e for e in log if getattr(e, "text", None) == "Queued behind it."]


class StuckStream:
    """A PortAudio stream whose write hangs in the device; abort() frees it unless `deaf` (then only release() does)."""

    stopped, active, latency = False, True, 0.01

    def __init__(self, deaf=False):
        self.deaf = deaf
        self.entered, self.freed = threading.Event(), threading.Event()
        self.aborted = self.closed = False
        self.closed_under_writer = None
        self.writing = False

    def write(self, data):
        self.writing = True
        self.entered.set()
        try:
            self.freed.wait(30)
            if self.aborted and not self.deaf:
                raise RuntimeError("Stream is stopped [PaErrorCode -9983]")
        finally:
            self.writing = False

    def abort(self, ignore_errors=True):
        self.aborted = True
        if not self.deaf:
            self.freed.set()

    def release(self):
        self.freed.set()

    def start(self):
        pass

    def stop(self, ignore_errors=True):
        pass

    def close(self, ignore_errors=True):
        self.closed, self.closed_under_writer = True, self.writing


def stuck_output(deaf):
    """A DeviceOutput (its locks and close logic are what is tested) over a stream that never plays."""
    out = DeviceOutput("pulse")
    out.stream, out.sample_rate = StuckStream(deaf), RATE
    return out


def test_a_write_stuck_in_the_device_is_aborted_and_close_returns(pulse, caplog):
    """A fake stream whose write blocks until abort() (a real device cannot be made to hang on purpose)."""
    out = stuck_output(deaf=False)
    stream = out.stream
    speaker = Speaker(ToneSynth(), EventBus(), output=out).start()
    speaker.say(sentence(10))
    assert stream.entered.wait(10)
    began = time.monotonic()
    speaker.close()
    assert time.monotonic() - began < 3.0
    assert stream.aborted and stream.closed and stream.closed_under_writer is False
    assert not speaker._play_thread.is_alive()
    assert not lines(caplog, "speaker lost")  # cut by close(): not a fault to report


def test_close_never_closes_a_device_under_a_write_that_will_not_return(pulse, caplog):
    """A fake stream whose write ignores abort(): close() returns in bounded time and never closes the stream under
    the write; the write closes it itself when it returns."""
    out = stuck_output(deaf=True)
    stream = out.stream
    speaker = Speaker(ToneSynth(), EventBus(), output=out).start()
    speaker.say(sentence(10))
    assert stream.entered.wait(10)
    began = time.monotonic()
    try:
        speaker.close()
        assert time.monotonic() - began < 6.0
        assert stream.aborted and not stream.closed  # left open, never closed under the writer
        assert lines(caplog, "stuck in the device")
    finally:
        stream.release()
    assert wait_for(lambda: not speaker._play_thread.is_alive(), 5)
    assert stream.closed and stream.closed_under_writer is False  # closed by the late write itself, once out of it
    assert out.stream is None


def test_wav_folder_deleted_mid_run_is_one_warning_and_the_whole_recording_comes_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="audio.devices")
    folder = tmp_path / "recordings"
    folder.mkdir()
    path = folder / "story.wav"
    bus = EventBus()
    log = record_events(bus)
    speaker = Speaker(ToneSynth(), bus, recorder=WavRecorder(str(path))).start()
    speaker.say(sentence(15))  # 1.5 s: the header is synced every 0.25 s
    assert speaker.wait_idle(timeout=10)
    before = sf.info(path).duration
    assert before >= 1.0  # a valid wav already, before any close
    shutil.rmtree(folder)
    for n in (12, 13):  # the deletion is seen at the next sync
        speaker.say(sentence(n))
        assert speaker.wait_idle(timeout=10)
    assert not path.exists()
    folder.mkdir()
    speaker.say(sentence(14))
    assert speaker.wait_idle(timeout=10)
    assert path.exists() and sf.info(path).duration > before  # back while the session runs, not only at close
    speaker.say(sentence(5))
    assert speaker.wait_idle(timeout=10)
    speaker.close()
    assert len(lines(caplog, "was deleted")) == 1 and len(lines(caplog, "the folder is back")) == 1
    assert [e.stage for e in named(log, ErrorEvent)] == ["output_wav"]
    assert len(named(log, SpeakEnd)) == 5  # the session went on
    data, rate = sf.read(path)
    spoken = (15 + 12 + 13 + 14 + 5) * 0.1
    assert spoken - 0.05 <= len(data) / rate <= spoken + 5 * 0.2  # everything, the pauses between sentences included
    assert np.abs(data[: int(0.1 * rate)]).max() > 0.1  # from the first sentence on


def test_wav_write_failure_keeps_a_valid_file_and_resumes_in_it(tmp_path):
    """A real failed write: the file-size limit (RLIMIT_FSIZE) makes writes fail like a full disk, in a child process."""
    script = textwrap.dedent(f"""
        import json, logging, resource, signal, sys
        import numpy as np, soundfile as sf
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from audio.devices import WavRecorder
        from errors import SinkError

        class Clock:
            now = 0.0
            def __call__(self):
                return self.now

        clock, errors = Clock(), []
        rec = WavRecorder(sys.argv[1], clock=clock)
        tone = (0.3 * np.sin(np.arange(320) * 0.2)).astype(np.float32)  # 20 ms at 16 kHz

        def write(seconds):
            for _ in range(int(seconds / 0.02)):
                try:
                    rec.write(tone, 16000)
                except SinkError as err:
                    errors.append(str(err))

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (44 + 2 * 16000 * 2 + 101, hard))  # room for 2 s, and an odd byte
        write(3.0)
        during = sf.info(sys.argv[1]).duration
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is free again
        write(0.5)  # still within the retry pause: dropped
        clock.now += {WAV_RETRY_S}
        write(1.0)
        rec.close()
        print(json.dumps({{"errors": errors, "during": during}}))
    """)
    path = tmp_path / "full.wav"
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(report["errors"]) == 1 and "cannot write" in report["errors"][0]
    assert 1.9 <= report["during"] <= 2.01  # what was written before the fault is a valid wav
    data, rate = sf.read(path)
    assert 2.9 <= len(data) / rate <= 3.01  # and the recording went on in the same file
    assert "writing" in result.stderr and "again" in result.stderr  # the recorder said it writes again


def test_an_output_wav_that_cannot_be_written_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"speech.output_wav: cannot write .*missing/out.wav \(No such file or directory\)") as err:
        WavRecorder(str(tmp_path / "missing" / "out.wav")).check()
    assert err.value.exit_code == 2
    fresh = tmp_path / "fresh.wav"
    WavRecorder(str(fresh)).check()
    assert not fresh.exists()  # checking leaves nothing behind
    kept = tmp_path / "kept.wav"
    kept.write_bytes(b"old")
    WavRecorder(str(kept)).check()
    assert kept.read_bytes() == b"old"


def test_sigterm_mid_story_with_output_wav_always_ends_cleanly(pulse, tiny, tmp_path):
    """Ten SIGTERMs at different moments of a story, with the device and muted: exit code 130, never a crash, a valid wav."""
    config = tmp_path / "config.yaml"
    config.write_text((tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}"))
    failures = []
    for n in range(10):
        wav, events = tmp_path / f"out{n}.wav", tmp_path / f"ev{n}.jsonl"
        args = ["--config", str(config), "--text", "--output-wav", str(wav), "--events", str(events)]
        app = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args] + (["--mute"] if n % 2 else []), cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        app.stdin.write("Tell me a story about a fox\nTell me another story\n")
        app.stdin.flush()
        spoken = lambda: events.exists() and events.read_text().count('"speak_start"') >= 1 + n % 3  # noqa: E731
        assert wait_for(spoken, 120, step=0.02), f"run {n}: never spoke"
        time.sleep(0.03 * (n % 4))
        app.send_signal(signal.SIGTERM)
        try:
            _, stderr = app.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            app.kill()
            _, stderr = app.communicate()
        if app.returncode != 130 or "Fatal Python error" in stderr or "Traceback" in stderr:
            failures.append((n, app.returncode, stderr[-2000:]))
            continue
        # A valid wav whose header never claims more than the file holds (all of it after an orderly close).
        # It may hold little: a device that stalls at start takes the first sentence's time.
        info, size = sf.info(wav), wav.stat().st_size
        assert info.samplerate == 22050 and 44 + 2 * info.frames <= size, (n, info, size, stderr)
        assert "still busy" in stderr or 44 + 2 * info.frames == size, (n, info, size, stderr)
    assert not failures, failures

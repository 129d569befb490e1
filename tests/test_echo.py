"""The echo canceller's parts in a simulated room: the far-end reference, the alignment, the check's verdict."""

import queue
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from audio.devices import resample
from audio.echo import (HOLD_FRAMES, RATE, EchoCanceller, EchoError, PlayedAudio, StreamResampler, check_echo,
                        judge, probe_sound)
from audio.room import barge_in
from harness.speech_clips import espeak


class Clock:
    """A clock the test moves."""

    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def db(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12)


def room(far16, delay_s=0.09, gain=0.5, noise=0.001, seed=1):
    """What a microphone hears of far16 in a small room: a delayed, quieter copy with two reflections."""
    d = int(delay_s * RATE)
    ir = np.zeros(d + 800, np.float32)
    ir[d], ir[d + 300], ir[d + 700] = gain, gain * 0.3, gain * 0.1
    near = np.convolve(far16, ir)[: len(far16)].astype(np.float32)
    return near + np.random.default_rng(seed).normal(0, noise, len(near)).astype(np.float32)


def speaker_plays(ref, clock, samples, rate, block_s=0.02, jitter_s=0.004, seed=0):
    """The speaker's blocks handed to the reference on the device's pace, each write a little early or late."""
    rng = np.random.default_rng(seed)
    block = int(rate * block_s)
    start = clock.t
    for i in range(0, len(samples), block):
        clock.t = start + i / rate + (rng.uniform(-jitter_s, jitter_s) if i else 0.0)
        ref.played(samples[i : i + block], rate)
    return start


def cancel(canceller, near, start, jitter_s=0.005, seed=2):
    """The microphone's 512-sample frames through the canceller, stamped as PortAudio's callback would."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(0, len(near) - 511, 512):
        at = start + (k + 512) / RATE + rng.normal(0, jitter_s)
        out.append(canceller.process(near[k : k + 512], at))
    return np.concatenate(out), near[: len(out) * 512]


@pytest.fixture(scope="module")
def story():
    """Four seconds of the storyteller's voice (eSpeak NG at 22,050 Hz, as pyttsx3 would give it)."""
    return resample(espeak("Once upon a time a little fox lived by the river. Every morning she ran to drink "
                           "and to count the fish that jumped in the sun."), RATE, 22050)


def test_the_resampler_is_continuous_across_blocks():
    tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    r = StreamResampler(22050)
    out = np.concatenate([r(tone[i : i + 441]) for i in range(0, len(tone), 441)])
    whole = resample(tone, 22050, RATE)
    assert abs(len(out) - len(whole)) <= 1
    assert np.max(np.abs(out[100:15800] - whole[100:15800])) < 0.01  # no clicks at the block edges


def test_played_audio_keeps_a_sentence_whole_through_the_writes_jitter():
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    x = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)  # 0.1 s at 16 kHz
    start = speaker_plays(ref, clock, x, RATE, block_s=0.01, jitter_s=0.004)
    got = ref.window(ref.index(start) + 1600, 1600)
    assert np.allclose(got, x)  # one stream, in order, without gaps or overlaps


def test_played_audio_is_silence_between_sentences_and_before_and_after():
    clock = Clock()
    ref = PlayedAudio(seconds=2.0, clock=clock)
    one = np.full(800, 0.3, np.float32)
    ref.played(one, RATE)
    clock.t += 0.5  # the next sentence begins half a second later: a new stream
    ref.played(one, RATE)
    first = ref.index(100.0)
    span = ref.window(first + int(0.55 * RATE), int(0.6 * RATE) + 800)
    assert np.count_nonzero(span) == 1600  # the two sentences, nothing in between
    assert not ref.window(first, 800).any()  # before anything was played
    assert not ref.window(first + 3 * RATE, 800).any()  # not played yet
    clock.t += 5.0
    ref.played(one, RATE)  # 5 s later the 2 s buffer has forgotten the first two
    assert not ref.window(first + 800, 800).any()
    assert ref.active_s == pytest.approx(3 * 800 / RATE)


def test_the_canceller_takes_the_echo_out_of_the_microphone(story):
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    canceller = EchoCanceller(ref)
    start = speaker_plays(ref, clock, story, 22050)
    near = room(resample(story, 22050, RATE))
    out, near = cancel(canceller, near, start)
    assert len(out) == len(near)
    late = slice(RATE, len(near))  # after its first second
    assert db(near[late]) - db(out[late]) > 20.0, (db(near[late]), db(out[late]))


def test_a_voice_over_the_echo_is_kept(story):
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    canceller = EchoCanceller(ref)
    start = speaker_plays(ref, clock, story, 22050)
    far16 = resample(story, 22050, RATE)
    child = espeak("Make it about a pirate!", "en-us+f3", 80)
    at = int(2.0 * RATE)
    near = room(far16)
    near[at : at + len(child)] += 0.5 * child[: len(near) - at]
    out, near = cancel(canceller, near, start)
    voice = slice(at + 1600, at + len(child) - 1600)
    echo_only = slice(RATE, at - 800)
    # The child is still there, far above what is left of the story.
    assert db(out[voice]) - db(out[echo_only]) > 15.0
    assert db(out[voice]) > db(0.5 * child) - 12.0


def test_the_canceller_settles_on_the_speakers_sound_and_again_after_reset(story):
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    canceller = EchoCanceller(ref, settle_s=1.0)
    assert not canceller.settled
    speaker_plays(ref, clock, story[: int(0.5 * 22050)], 22050)
    assert not canceller.settled
    speaker_plays(ref, clock, story[: int(1.5 * 22050)], 22050)
    assert canceller.settled
    canceller.reset()
    assert not canceller.settled


def test_each_new_playback_is_adapted_to_before_a_voice_is_trusted_again(story):
    # AEC3 takes little of the echo out in the first 0.3 s of a playback after quiet (the room
    # measured 2-16 dB where a story's own sentences got 60): the app once took its acknowledgement
    # for a child there. Within the playback's first resettle_s only "stop" may interrupt.
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    canceller = EchoCanceller(ref, settle_s=1.0, resettle_s=0.8)
    speaker_plays(ref, clock, story[: int(1.5 * 22050)], 22050)
    assert canceller.settled  # the first playback: 1.5 s of it
    clock.t += 0.5
    speaker_plays(ref, clock, story[: int(0.4 * 22050)], 22050)
    assert canceller.settled  # half a second between sentences: the same playback
    clock.t += 3.0
    assert canceller.settled  # quiet: nothing to take for a voice
    speaker_plays(ref, clock, story[: int(0.3 * 22050)], 22050)
    assert not canceller.settled  # an acknowledgement after the child's turn: 0.3 s in
    speaker_plays(ref, clock, story[: int(0.7 * 22050)], 22050)
    assert canceller.settled  # 1.0 s in


def test_the_check_finds_the_delay_and_judges_the_room():
    far = resample(probe_sound(), 22050, RATE)
    near = room(far, delay_s=0.07, gain=0.5)
    quiet = judge(far, room(far, gain=0.0005), room(far, gain=0.0005))
    assert quiet.ok and quiet.delay_ms is None  # a headset: nothing to cancel
    raw = judge(far, near, near)  # a canceller that did nothing
    assert not raw.ok and "half-duplex" in raw.reason
    assert raw.delay_ms == pytest.approx(70, abs=2)
    assert raw.erl_db == pytest.approx(-20 * np.log10(0.5), abs=2)
    good = judge(far, near, near * 0.01)
    assert good.ok and good.erle_db == pytest.approx(40, abs=1)
    assert "barge-in on" in good.line()


@pytest.mark.integration  # real time: a device thread plays and a capture thread hears, at 32 ms a frame
def test_check_echo_through_a_simulated_room():
    """The start-up check end to end: a device that leaks what it is given into a microphone queue."""
    ref = PlayedAudio()
    canceller = EchoCanceller(ref)
    mic: queue.Queue = queue.Queue()
    delay = int(0.06 * RATE)
    BUFFER_S = 0.1  # noqa: N806 - the simulated device's buffer, as PortAudio's output latency
    # One sample clock for the device and the microphone, as a sound card has: a block is played
    # where the clock is when it is written (or after the last one), and a frame holds what the
    # clock was at. A late thread on a loaded machine then delivers late, but never shifts the
    # room's delay (a capture that counted its own sleeps drifted, and CI measured 324 ms).
    t0 = time.monotonic()
    room = np.zeros(int(30 * RATE), np.float32)
    cursor = [0]
    lock = threading.Lock()

    def write(block, rate):
        x = resample(block, rate, RATE) * 0.5
        with lock:
            at = max(cursor[0], int((time.monotonic() - t0) * RATE))
            room[at + delay : at + delay + len(x)] += x[: max(0, len(room) - at - delay)]
            cursor[0] = at + len(x)
            ahead = cursor[0] / RATE - (time.monotonic() - t0)
        # A blocking write returns while the device still holds about BUFFER_S: a writer late by
        # less than that leaves no gap (sleeping each block's length instead made every late
        # wake-up a gap the reference did not see, and a loaded CI measured 261 ms against 60).
        time.sleep(max(0.0, ahead - BUFFER_S))

    stop = threading.Event()

    def capture():
        sent = 0
        while not stop.is_set() and (sent + 1) * 512 < len(room):
            time.sleep(max(0.0, t0 + (sent + 1) * 512 / RATE - time.monotonic()))  # the frame is complete
            with lock:
                frame = room[sent * 512 : (sent + 1) * 512].copy()
            noisy = frame + np.random.default_rng().normal(0, 0.001, 512).astype(np.float32)
            mic.put((noisy, t0 + (sent + 1) * 512 / RATE))  # stamped with its last sample, as process() takes it
            sent += 1

    def frames():
        while True:
            yield mic.get(timeout=2)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    try:
        report = check_echo(write, frames(), ref, canceller)
    finally:
        stop.set()
    assert report.delay_ms is not None and 10 <= report.delay_ms <= 140, report  # 60 ms
    assert report.ok, report.line()


def test_check_echo_with_a_silent_microphone_is_a_clear_error():
    def frames():
        return iter(())

    with pytest.raises(EchoError, match="sent nothing"):
        check_echo(lambda block, rate: None, frames(), PlayedAudio(), tail_s=0.0)


def listen(**kw):
    base = dict(barge_in="auto", echo_cancel="webrtc", echo_check=False, echo_settle_s=1.0)
    return SimpleNamespace(**{**base, **kw})


def test_barge_in_auto_follows_the_canceller_and_the_settings():
    ref = PlayedAudio()
    mic = SimpleNamespace(echo=EchoCanceller(ref, settle_s=0.5))
    assert barge_in(listen(barge_in=False), mic, object(), ref) is False
    assert barge_in(listen(barge_in=True), SimpleNamespace(echo=None), object(), None) is True
    assert barge_in(listen(), mic, None, ref) is True  # a silent app has no echo
    assert barge_in(listen(echo_cancel="off"), SimpleNamespace(echo=None), object(), None) is False
    allowed = barge_in(listen(), mic, object(), ref)
    assert callable(allowed) and not allowed()  # not settled yet: only "stop" may interrupt
    ref.played(np.full(int(0.6 * RATE), 0.2, np.float32), RATE)
    assert allowed()
    system = barge_in(listen(echo_cancel="system"), SimpleNamespace(echo=None), object(), None)
    assert system()


def test_a_failed_echo_check_falls_back_to_half_duplex(caplog):
    class Broken:
        def write(self, block, rate):
            raise OSError("device gone")

        def pause(self):
            pass

    mic = SimpleNamespace(echo=None, far=None, drain=lambda: None, read_stamped=lambda stop: iter(()))
    with caplog.at_level("WARNING"):
        assert barge_in(listen(echo_check=True, echo_cancel="system"), mic, Broken(), None) is False
    assert "half-duplex" in caplog.text and "device gone" in caplog.text


def test_what_the_canceller_leaves_of_the_echo_alone_is_brought_down_to_the_rooms_level(story):
    """The residual echo suppressor: a chunk AEC3 took 12 dB or more out of was echo only."""
    outs = []
    for residual_db in (None, 12.0):
        clock = Clock()
        ref = PlayedAudio(clock=clock)
        canceller = EchoCanceller(ref, residual_db=residual_db)
        start = speaker_plays(ref, clock, story, 22050)
        out, near = cancel(canceller, room(resample(story, 22050, RATE), noise=0.0), start)
        outs.append(out[RATE:])
    plain, suppressed = outs
    assert db(plain) - db(suppressed) > 10.0, (db(plain), db(suppressed))


def test_an_echo_frame_cancelled_under_the_room_comes_back_at_the_rooms_level():
    """AEC3 silences the classmates' murmur with the echo; what the VAD hears must stay the room's level.

    Left at -100 dBFS, such frames pulled the VAD's noise floor down under the murmur during each
    sentence, and the murmur between sentences stopped the story (measured in the echo room).
    """
    canceller = EchoCanceller(PlayedAudio(clock=Clock()))
    rng = np.random.default_rng(3)
    silent = np.zeros(512, np.float32)
    for _ in range(40):  # the room with the speaker silent: murmur at -40 dBFS
        murmur = rng.normal(0, 0.01, 512).astype(np.float32)
        canceller._suppress(murmur, silent, murmur)
    far = rng.normal(0, 0.3, 512).astype(np.float32)
    near = rng.normal(0, 0.1, 512).astype(np.float32)  # the story's echo (and the murmur), -20 dBFS
    for _ in range(HOLD_FRAMES + 1):  # past the frames kept after the last voice
        under = canceller._suppress(near, far, near * 1e-4)  # AEC3 left -100 dBFS of it
        over = canceller._suppress(near, far, near * 0.2)  # AEC3 took 14 dB out: -34 dBFS left
    assert abs(db(under) - -40.0) < 1.5, db(under)
    assert abs(db(over) - -40.0) < 1.5, db(over)  # brought down to the room, as before
    plain = EchoCanceller(PlayedAudio(clock=Clock()), residual_db=None)
    assert db(plain._suppress(near, far, near * 1e-4)) < -95.0  # the benchmark's AEC3 alone: as it was


def test_dropped_frames_move_the_far_end_by_exactly_their_length():
    clock = Clock()
    ref = PlayedAudio(clock=clock)
    canceller = EchoCanceller(ref, reanchor_s=0.2)
    canceller.process(np.zeros(512, np.float32), clock.t)
    cursor = canceller._cursor
    canceller.skip(5 * 512)  # a drain: five frames never heard
    canceller.process(np.zeros(512, np.float32), clock.t + 0.03)  # the stamp's jitter: no re-anchor
    assert canceller._cursor == cursor + 6 * 512
    assert canceller.reanchored == []
    canceller.process(np.zeros(512, np.float32), clock.t + 5.0)  # a real break: found again by the stamp
    assert canceller.reanchored and canceller._cursor == ref.index(clock.t + 5.0) + 512


def test_with_the_monitor_as_the_far_end_the_check_does_not_write_the_probe_itself():
    ref = PlayedAudio()
    frames = iter([(np.zeros(512, np.float32), time.monotonic() + 1.0)] * 3)
    check_echo(lambda block, rate: None, frames, ref, None, tail_s=0.0, feed=False)
    assert ref.active_s == 0.0

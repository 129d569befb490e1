"""Listening with real weights, offline: Silero VAD endpointing and Whisper tiny.en on eSpeak children's voices."""

import itertools
import subprocess
import threading

import jiwer
import numpy as np
import pytest
import soundfile as sf

from audio.listen import Microphone, create_listener
from audio.stt import HallucinationFilter
from audio.vad import FRAME_S, frame_db
from events import EventBus, Heard, Listening, NoSpeech, SpeechEnd, SpeechStart
from settings import ListenSettings
from harness.speech_clips import RATE, REQUESTS, VOICES, babble, espeak, frames_of, mix_at_snr, rms, silence

NORMALIZE = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()])


def wer(truth: list[str], heard: list[str]) -> float:
    return jiwer.wer([NORMALIZE(t) for t in truth], [NORMALIZE(h) or "<nothing>" for h in heard])


@pytest.fixture(scope="module")
def bus_log():
    bus, log = EventBus(), []
    bus.subscribe(log.append)
    return bus, log


@pytest.fixture(scope="module")
def listener(bus_log):
    return create_listener(ListenSettings(), "en", bus_log[0])


@pytest.fixture
def steady_listener(listener):
    """The same listener made repeatable: early transcripts at once (decisions in audio time), no sampling.

    Frames are fed faster than real time here, so a background transcript lands wherever the
    scheduler puts it; and Whisper's temperature fallback samples a repetitive segment again at
    random. Over babble both changed the words heard from run to run (WER 0.47-0.74).
    """
    saved = listener.inline, listener.transcriber.temperature
    listener.inline, listener.transcriber.temperature = True, (0.0,)
    yield listener
    listener.inline, listener.transcriber.temperature = saved


def listen_to(listener, samples, counter=None, **kwargs):
    listener.scorer.reset()
    listener.noise.reset()
    return listener.listen(frames_of(np.concatenate([samples, silence(1.5)]), counter), threading.Event(), **kwargs)


@pytest.mark.integration
def test_children_requests_in_several_voices(listener):
    truth, heard = [], []
    for voice, pitch, wpm in VOICES:
        for text in REQUESTS:
            result = listen_to(listener, np.concatenate([silence(0.5), espeak(text, voice, pitch, wpm)]))
            truth.append(text)
            heard.append(result.text if result else "")
    assert wer(truth, heard) <= 0.15, list(zip(truth, heard))


def test_silence_and_noise_never_start_a_turn(listener, bus_log):
    rng = np.random.default_rng(1)
    for clip in (silence(3.0), (0.03 * rng.standard_normal(3 * RATE)).astype(np.float32)):
        bus_log[1].clear()
        assert listen_to(listener, clip) is None
        assert [type(e) for e in bus_log[1]] == [Listening, NoSpeech]


def test_one_sentence_between_silences_is_exactly_one_turn(listener, bus_log):
    text = "Tell me a story about a brave little mouse."
    clip = np.concatenate([silence(1.5), espeak(text), silence(1.5)])
    bus_log[1].clear()
    frames = frames_of(clip)
    listener.scorer.reset()
    first = listener.listen(frames, threading.Event())
    second = listener.listen(frames, threading.Event())  # the rest of the clip
    assert first is not None and wer([text], [first.text]) <= 0.15, first
    assert second is None
    kinds = [type(e) for e in bus_log[1]]
    assert kinds.count(SpeechStart) == 1 and kinds.count(Heard) == 1


def test_first_syllable_is_kept_by_the_pre_roll(listener):
    result = listen_to(listener, np.concatenate([silence(1.0), espeak("Dragons are my favourite animals.")]))
    assert result.text.lower().startswith("dragon")


@pytest.mark.integration
def test_speech_over_classroom_babble_at_10_db(steady_listener, bus_log):
    """The turn ends soon after the child stops although the room keeps murmuring."""
    listener = steady_listener
    truth, heard, delays = [], [], []
    for i, text in enumerate(REQUESTS):
        speech = espeak(text, *VOICES[1])
        offset = 2.0
        mixed = mix_at_snr(speech, babble(offset + len(speech) / RATE + 6.0, seed=i), snr_db=10, offset_s=offset)
        counter = [0]
        bus_log[1].clear()
        listener.noise.reset()
        listener.scorer.reset()
        result = listener.listen(frames_of(mixed, counter), threading.Event())
        truth.append(text)
        heard.append(result.text if result else "")
        ends = [e for e in bus_log[1] if isinstance(e, SpeechEnd)]
        assert ends and not ends[0].forced, "the turn had to be cut by max_utterance_s"
        speech_end = offset + len(speech) / RATE
        delays.append(counter[0] * FRAME_S - speech_end)
    assert max(delays) < 2.0, delays  # ends within 2 s of the child stopping, not at 15 s
    # Measured 0.59 with tiny.en, the same on every run (0.47-0.74 before, with a thread and the
    # fallback): the murmur is intelligible speech too, and some of it is transcribed (#20).
    assert wer(truth, heard) <= 0.62, list(zip(truth, heard))


def starts(listener, samples, learn_s=4.0):
    """Seconds into samples at which a voice began (a turn, or a barge-in over the story); the first learn_s teach the floor."""
    listener.scorer.reset()
    listener.noise.reset()
    frames, n, at = frames_of(samples), [0], []
    for frame in itertools.islice(frames, round(learn_s / FRAME_S)):
        listener.scorer(frame)  # Silero hears the room too, as it has before any story
        listener.noise.update(frame_db(frame))
        n[0] += 1

    def counted():
        for frame in frames:
            n[0] += 1
            yield frame

    it = counted()
    while listener.utterance(it, threading.Event(), on_start=lambda: at.append(n[0] * FRAME_S), announce=False) is not None:
        pass
    return at


@pytest.mark.integration
def test_classmates_babble_never_begins_a_voice_but_the_child_over_it_does(listener):
    """A voice begins only start_margin_db above the room: the murmur 15 dB under the child never does (no turn, no barge-in)."""
    speech = espeak(REQUESTS[3], *VOICES[1])
    room = babble(34.0, seed=3)
    murmur = room * (rms(speech) / (rms(room) * 10 ** (15 / 20)))  # as mix_at_snr scales it
    assert starts(listener, murmur) == []
    # The margin that holds a voice once begun (noise_margin_db) takes the same murmur for one: the test can fail.
    listener.start_margin_db, margin = listener.noise_margin_db, listener.start_margin_db
    try:
        assert starts(listener, murmur)
    finally:
        listener.start_margin_db = margin
    for snr in (15, 10):
        mixed = mix_at_snr(speech, babble(12.0, seed=4), snr_db=snr, offset_s=5.0)
        at = starts(listener, mixed)
        assert at and 5.0 <= at[0] <= 5.0 + len(speech) / RATE, (snr, at)


def test_hallucination_filter_rules():
    kept = HallucinationFilter().keeps
    assert not kept(no_speech_prob=0.95, avg_logprob=-1.2, compression_ratio=1.0)  # tiny.en's "You" on silence
    assert not kept(no_speech_prob=0.1, avg_logprob=-2.0, compression_ratio=1.0)
    assert not kept(no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=3.0)
    assert kept(no_speech_prob=0.1, avg_logprob=-0.3, compression_ratio=1.4)


def test_listening_through_a_real_microphone_device(pulse, listener, tmp_path):
    """A wav played into the PulseAudio virtual microphone is heard by the listener reading the device."""
    text = "Please tell me a story about a sleepy bear."
    clip = tmp_path / "child.wav"
    sf.write(clip, np.concatenate([silence(0.5), espeak(text), silence(0.5)]), RATE)
    mic = Microphone("pulse")
    mic.open()
    stop = threading.Event()
    timer = threading.Timer(15, stop.set)
    timer.start()
    try:
        player = subprocess.Popen(["paplay", "--device=kiosk_mic_feed", str(clip)])
        listener.scorer.reset()
        result = listener.listen(mic.read(stop), stop)
        player.wait(10)
    finally:
        timer.cancel()
        mic.close()
    assert result is not None and wer([text], [result.text]) <= 0.34, result


def test_app_hears_a_recording(tiny, tmp_path):
    import json

    from tests.helpers import run_main

    text = "Tell me a story about a dragon."
    clip = tmp_path / "child.wav"
    sf.write(clip, np.concatenate([silence(0.7), espeak(text, *VOICES[2]), silence(0.3)]), RATE)
    events = tmp_path / "ev.jsonl"
    result = run_main("--config", str(tiny / "config.yaml"), "--input-wav", str(clip), "--mute", "--events", str(events))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in events.read_text().splitlines()]
    heard = [r for r in records if r["event"] == "heard"]
    assert len(heard) == 1 and wer([text], [heard[0]["text"]]) <= 0.15
    assert heard[0]["language"] == "en" and 1.5 < heard[0]["duration"] < 5
    assert [r["event"] for r in records].index("heard") < [r["event"] for r in records].index("sentence")
    end = [r for r in records if r["event"] == "turn_end"][0]
    assert 0 < end["stt_s"] <= end["first_token_s"] <= end["first_sentence_s"] <= end["total_s"]
    assert end["first_audio_s"] is None  # --mute: nothing was played


def test_app_reports_a_recording_without_speech(tiny, tmp_path):
    import json

    from tests.helpers import run_main

    clip = tmp_path / "quiet.wav"
    sf.write(clip, silence(2.0), RATE)
    events = tmp_path / "ev.jsonl"
    result = run_main("--config", str(tiny / "config.yaml"), "--input-wav", str(clip), "--mute", "--events", str(events))
    assert result.returncode == 0, result.stderr
    names = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert "no_speech" in names and "sentence" not in names


def test_missing_microphone_is_one_line_suggesting_text(tiny, tmp_path):
    from tests.helpers import run_main

    config = tmp_path / "config.yaml"
    text = (tiny / "config.yaml").read_text().replace("adapter: adapter", f"adapter: {tiny / 'adapter'}")
    config.write_text(text + "audio:\n  input_device: no-such-microphone\n")
    result = run_main("--config", str(config), "--mute", timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "microphone" in errors[0] and "--text" in errors[0]
    assert "Traceback" not in result.stderr


# --- a pause inside a request (audio/completeness.py) ------------------------------------------------

PAUSED = [("Tell me a story about", "a dragon who loves chocolate cake."),
          ("Can I have a story with a fox and", "a little owl in the forest?"),
          ("I want a story about the", "moon and the stars.")]


def test_a_pause_mid_request_does_not_cut_the_child_off(listener):
    """Child-pitched voices pausing 1.2 s after an open word: one turn with the whole request; with the hold off, cut."""
    for (head, tail), (voice, pitch, wpm) in zip(PAUSED, VOICES):
        clip = np.concatenate([silence(0.5), espeak(head, voice, pitch, wpm), silence(1.2), espeak(tail, voice, pitch, wpm)])
        heard = listen_to(listener, clip)
        assert heard is not None and wer([f"{head} {tail}"], [heard.text]) <= 0.3, (head, heard)
        cut = copy_listener(listener, 0.0)
        first = listen_to(cut, clip)
        assert first is not None and tail.split()[-1].strip(".?").lower() not in first.text.lower(), first  # the control


def copy_listener(listener, hold: float):
    """The same parts with another hold (the Listener holds no state between turns but its noise floor)."""
    from audio.listen import Listener

    return Listener(listener.scorer, listener.transcriber, listener.bus, listener.endpoint, listener.threshold,
                    listener.noise_margin_db, listener.pre_roll_s, unfinished_hold_s=hold)


def test_a_finished_request_ends_without_the_hold(listener):
    """The hold is only for unfinished words: a whole request ends at the usual silence (counted in frames, not time).

    resume=False, as for an answer: the resume window after finished words is tested in tests/test_turn_taking.py.
    """
    speech = np.concatenate([silence(0.5), espeak("Tell me a story about a brave little mouse.")])
    counter = [0]
    heard = listen_to(listener, np.concatenate([speech, silence(3.0)]), counter, resume=False)
    assert heard is not None and "mouse" in heard.text.lower()
    waited_s = counter[0] * 512 / 16000 - len(speech) / 16000
    assert waited_s < 1.2, waited_s  # end_silence_s (0.8 s) and a frame or two, not 0.8 + 1.7


@pytest.mark.integration
def test_the_listening_cue_is_no_speech_to_silero_when_the_speaker_leaks_into_the_microphone(listener):
    """The cue plays while the listener waits for the rest of a turn: heard through the room, it must not start one."""
    from audio.cue import listening_cue
    from audio.devices import resample

    cue = listening_cue(22050)
    leak = resample(cue.samples, 22050, RATE)
    for gain in (1.0, 0.3):  # as loud as played, and as a microphone across the kiosk hears it
        listener.scorer.reset()
        clip = np.concatenate([silence(0.2), gain * leak, silence(0.3)]).astype(np.float32)
        scores = [listener.scorer(clip[i: i + 512]) for i in range(0, len(clip) - 511, 512)]
        assert max(scores) < 0.3, (gain, scores)  # the speech threshold is 0.5

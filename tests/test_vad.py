"""The end-of-turn decision is pure: seconds and booleans in, START/END out."""

from audio.vad import FRAME_S, EndpointConfig, NoiseFloor, Segmenter, SpeechEdge

CONFIG = EndpointConfig(min_speech_s=0.25, end_silence_s=0.8, max_utterance_s=15.0)


def run(pattern, config=CONFIG, step=FRAME_S):
    """pattern: list of (seconds, is_speech); returns [(time, SpeechEdge)]."""
    seg, out = Segmenter(config), []
    for seconds, speech in pattern:
        for _ in range(round(seconds / step)):
            event = seg.process(step, speech)
            if event:
                out.append((round(seg.t, 3), event))
    return out


def test_speech_then_silence_is_one_turn():
    events = run([(1.0, False), (2.0, True), (1.5, False)])
    assert [e for _, e in events] == [SpeechEdge.START, SpeechEdge.END]
    start, end = events[0][0], events[1][0]
    assert abs(start - 1.25) <= 2 * FRAME_S  # confirmed after min_speech_s of speech
    assert abs(end - 3.8) <= 2 * FRAME_S  # 0.8 s of trailing silence after speech ended at 3.0


def test_cough_shorter_than_min_speech_starts_nothing():
    assert run([(1.0, False), (0.15, True), (2.0, False)]) == []


def test_short_pauses_inside_a_sentence_do_not_end_the_turn():
    events = run([(0.5, False), (1.0, True), (0.5, False), (1.0, True), (0.6, False), (0.5, True), (1.0, False)])
    assert [e for _, e in events] == [SpeechEdge.START, SpeechEdge.END]


def test_endless_speech_is_cut_at_max_utterance():
    seg = Segmenter(EndpointConfig(0.25, 0.8, max_utterance_s=5.0))
    events = [(seg.t, e, seg.forced) for _ in range(round(10 / FRAME_S)) if (e := seg.process(FRAME_S, True))]
    assert events[1][1] is SpeechEdge.END and events[1][2]
    assert abs(events[1][0] - 5.0) < 2 * FRAME_S


def test_two_turns_in_a_row():
    events = run([(2.0, True), (1.0, False), (2.0, True), (1.0, False)])
    assert [e for _, e in events] == [SpeechEdge.START, SpeechEdge.END, SpeechEdge.START, SpeechEdge.END]


def test_a_lone_speech_frame_does_not_reopen_a_trailing_silence():
    # 2 s of speech, then "silence" sprinkled with single loud frames from the room.
    seg, events = Segmenter(CONFIG), []
    for _ in range(round(2.0 / FRAME_S)):
        seg.process(FRAME_S, True)
    for i in range(round(2.0 / FRAME_S)):
        if (e := seg.process(FRAME_S, i % 4 == 3)):
            events.append((round(seg.t, 2), e))
    assert events and events[0][1] is SpeechEdge.END and events[0][0] < 2.0 + 1.0


def test_noise_floor_follows_the_room():
    floor = NoiseFloor(window_s=4.0, percentile=20)
    for _ in range(round(4.0 / FRAME_S)):
        floor.update(-60)
    assert floor.floor_db == -60
    levels = [-30 + 6 * ((i * 7) % 5 - 2) for i in range(round(4.0 / FRAME_S))]  # murmur -42..-18 dB
    for level in levels:
        floor.update(level)
    assert -42 <= floor.floor_db <= -30  # below the murmur's typical level, not its peaks
    for _ in range(round(1.5 / FRAME_S)):  # a child speaking at -15 dB for 1.5 s
        floor.update(-15)
    assert floor.floor_db <= -30  # the child's voice does not become the floor


def test_a_voice_must_begin_louder_than_the_room_and_then_may_soften():
    """listen.start_margin_db: the murmur 8 dB over the floor never begins; a voice 12 dB over does, and goes on at 8 dB."""
    import threading

    import numpy as np

    from audio.listen import Listener
    from events import EventBus

    def tone(db):
        return np.full(512, 10 ** (db / 20), np.float32)

    def run(parts, start_margin_db):
        ear = Listener(lambda f: 1.0, None, EventBus(), EndpointConfig(0.25, 0.8, 15.0), noise_margin_db=6.0,
                       start_margin_db=start_margin_db)
        for _ in range(round(4.0 / FRAME_S)):
            ear.noise.update(-50.0)  # the room, learnt before
        began = []
        stream = (tone(db) for db, seconds in parts for _ in range(round(seconds / FRAME_S)))
        audio = ear.utterance(stream, threading.Event(), on_start=lambda: began.append(1), announce=False)
        return began, None if audio is None else len(audio) / 16000

    murmur = [(-50.0, 0.5), (-42.0, 1.0), (-50.0, 1.0)]
    assert run(murmur, start_margin_db=None)[0] == [1]  # the old rule: noise_margin_db for the start too
    assert run(murmur, start_margin_db=9.0) == ([], None)
    began, seconds = run([(-50.0, 0.5), (-38.0, 0.5), (-42.0, 1.5), (-50.0, 1.0)], start_margin_db=9.0)
    assert began == [1] and seconds >= 2.0, seconds  # the softer words of the same sentence are kept

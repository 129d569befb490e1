"""The KV-cache plan (llm/kvcache.py) on token ids alone: keep, shift out a dropped exchange, snapshots."""

from __future__ import annotations

from llm.kvcache import MIN_SNAPSHOT_TOKENS, Snapshot, Snapshots, common_prefix, find_shift, plan

SYSTEM = list(range(1000, 1100))  # 100 tokens of system prompt
USER, END = 7, 8


def turn(seed: int, n: int = 30) -> list[int]:
    """A chat turn: header, n tokens of text unique to the seed, end marker."""
    return [USER, *range(seed * 100, seed * 100 + n), END]


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_a_dropped_oldest_exchange_is_shifted_out():
    cached = SYSTEM + turn(1) + turn(2) + turn(3) + turn(4)
    trimmed = SYSTEM + turn(3) + turn(4) + turn(5)  # exchanges 1-2 no longer fit the budget
    shift = find_shift(cached, trimmed)
    # The turns share their header token, so the span may start one token later: the same cut.
    assert shift.start in (len(SYSTEM), len(SYSTEM) + 1)
    assert shift.dropped == len(turn(1) + turn(2)) and shift.reused == len(SYSTEM + turn(3) + turn(4))
    # After removing the span the cache is exactly the reused part of the new prompt.
    kept = cached[: shift.start] + cached[shift.start + shift.dropped :]
    assert kept == trimmed[: shift.reused]


def test_a_reply_retokenized_differently_at_its_end_still_shifts():
    cached = SYSTEM + turn(1) + turn(2) + turn(3)
    trimmed = SYSTEM + turn(2) + turn(3)[:-3] + [5, 5, END] + turn(4)
    shift = find_shift(cached, trimmed)
    assert shift is not None and shift.dropped == len(turn(1))
    assert shift.reused == len(SYSTEM + turn(2) + turn(3)) - 3


def test_no_shift_for_a_different_prompt_or_a_short_coincidence():
    cached = SYSTEM + turn(1) + turn(2)
    other_system = [2000 + i for i in range(50)] + turn(1)
    assert find_shift(cached, other_system) is None
    # The new prompt's text recurs in the cache for a few tokens only: not a dropped exchange.
    coincidence = SYSTEM + turn(2)[:5] + [9999] * 40
    assert find_shift(cached, coincidence) is None
    # A phrase from far back that does not run on to the end of the cache is not trusted either.
    echo = SYSTEM + turn(1)[5:25]
    assert find_shift(SYSTEM + [3] * 10 + turn(1) + turn(2) + turn(3) + turn(4), echo) is None
    # Nothing to shift when the prompt simply extends the cache.
    assert find_shift(cached, cached + turn(3)) is None


def test_plan_keeps_a_prefix_that_extends():
    cached = SYSTEM + turn(1)
    step = plan(cached, cached + turn(2), Snapshots())
    assert step.reused == len(cached) and step.shift is None and step.load is None and not step.save_current


def test_plan_saves_the_story_before_an_activity_and_loads_it_back():
    snaps = Snapshots()
    story = SYSTEM + turn(1) + turn(2)
    activity = [3000 + i for i in range(80)] + turn(9)
    step = plan(story, activity, snaps)
    assert step.save_current and step.load is None and step.reused == 0
    snaps.add(Snapshot(tuple(story), b"story-cells"))
    # The story's next turn: the cache now holds the activity; the snapshot holds the story.
    step = plan(activity, story + turn(3), snaps)
    assert step.load is not None and step.load.tokens == tuple(story)
    assert step.reused == len(story) and step.save_current  # the activity's cache is kept as well


def test_plan_does_not_save_small_caches():
    snaps = Snapshots()
    small = SYSTEM[: MIN_SNAPSHOT_TOKENS - 1]
    assert not plan(small, [1, 2, 3], snaps).save_current


def test_plan_prefers_the_cache_it_has_when_it_is_as_good():
    snaps = Snapshots()
    snaps.add(Snapshot(tuple(SYSTEM), b"x"))
    cached = SYSTEM + turn(1)
    step = plan(cached, cached + turn(2), snaps)
    assert step.load is None and step.reused == len(cached)


def test_snapshots_keep_the_newest_within_count_and_bytes():
    snaps = Snapshots(max_items=2, max_bytes=100)
    a, b, c = (Snapshot((i, i + 1), b"x" * 40) for i in (1, 10, 20))
    for s in (a, b, c):
        snaps.add(s)
    assert len(snaps) == 2 and snaps.best([1, 2])[0] is None and snaps.best([20, 21])[0] is c
    snaps.add(Snapshot((30,), b"x" * 90))  # over the byte budget with the others: they go
    assert len(snaps) == 1
    snaps.add(Snapshot((40,), b"x" * 101))  # larger than the whole budget: not kept
    assert snaps.best([40])[0] is None


def test_a_longer_snapshot_of_the_same_conversation_replaces_the_shorter():
    snaps = Snapshots()
    snaps.add(Snapshot(tuple(SYSTEM + turn(1)), b"old"))
    snaps.add(Snapshot(tuple(SYSTEM + turn(1) + turn(2)), b"new"))
    assert len(snaps) == 1
    found, _, n = snaps.best(SYSTEM + turn(1) + turn(2) + turn(3))
    assert found.data == b"new" and n == len(SYSTEM + turn(1) + turn(2))


def test_a_saved_story_that_outgrew_its_budget_is_loaded_and_shifted():
    """After an activity, the story's next turn is also the one that drops its oldest exchange."""
    snaps = Snapshots()
    story = SYSTEM + turn(1) + turn(2) + turn(3)
    snaps.add(Snapshot(tuple(story), b"story-cells"))
    activity = [3000 + i for i in range(80)]
    trimmed = SYSTEM + turn(2) + turn(3) + turn(4)
    step = plan(activity, trimmed, snaps)
    assert step.load is not None and step.shift is not None
    assert step.shift.dropped == len(turn(1)) and step.reused == len(SYSTEM + turn(2) + turn(3))


def test_a_new_child_does_not_save_the_previous_story():
    story = SYSTEM + turn(1) + turn(2) + turn(3) + turn(4)
    assert plan(story, SYSTEM + turn(9), Snapshots()).save_current
    assert not plan(story, SYSTEM + turn(9), Snapshots(), save=False).save_current


def test_a_snapshot_is_loaded_only_for_a_real_gain():
    snaps = Snapshots()
    snaps.add(Snapshot(tuple(SYSTEM + turn(1)[:5]), b"x"))
    cached = SYSTEM + [5] * 70
    step = plan(cached, SYSTEM + turn(1), snaps)  # 5 more tokens from the snapshot: not worth a load
    assert step.load is None and step.reused == len(SYSTEM)


def test_a_shorter_snapshot_does_not_replace_a_longer_one():
    snaps = Snapshots()
    snaps.add(Snapshot(tuple(SYSTEM + turn(1) + turn(2)), b"long"))
    snaps.add(Snapshot(tuple(SYSTEM + turn(1)), b"short"))
    assert len(snaps) == 1 and snaps.best(SYSTEM + turn(1) + turn(2))[0].data == b"long"

"""The watchdog's group check: partitions no member of a stage's group holds are a stall.

Such a group owes no work by its members' own counts (nobody holds the partitions, so nobody
has a lag), so only the group's coordinator can tell (`Consumer.unowned`). The Kafka case,
with kafka-python's metadata refresh lost, is in tests/integration/test_kafka_unowned_group.py.
"""
from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from watchkeeper.liveness import (GROUP_BACKOFF, GROUP_CHECK_S, Heartbeat, LivenessConfig,
                                  StageRegistry, Watchdog)

CONFIG = LivenessConfig(stall_seconds=30, max_rejoins=2)
STEP = GROUP_CHECK_S + 1               # each check below may ask the group again


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Group:
    """What the coordinator answers, and how often it was asked."""

    def __init__(self, *answers) -> None:
        self.answers, self.asked = list(answers), 0

    def __call__(self) -> int | None:
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _sweep(beat: Heartbeat) -> str | None:
    """What the watchdog does to each stage: judge it, then ask its group."""
    fatal = beat.check(CONFIG)
    beat.ask_group()
    return fatal


def _run(beat: Heartbeat, clock: Clock, seconds: float) -> str | None:
    """Steps and checks for `seconds`: a member holding partitions of its own, caught up."""
    fatal = None
    end = clock.now + seconds
    while clock.now < end and fatal is None:
        clock.now += STEP
        beat.step(consumed=5, lag=0)
        fatal = _sweep(beat)
        if beat.rejoin_wanted():
            beat.rejoined(ok=True)
    return fatal


def _unowned_metric(stage: str) -> float | None:
    return REGISTRY.get_sample_value("watchkeeper_stage_unowned_partitions", {"stage": stage})


def test_partitions_nobody_holds_ask_for_rejoins_then_end_the_process():
    clock, group = Clock(), Group(3)
    beat = Heartbeat("gap", clock)
    beat.watch_group(group)
    # The member itself is busy and caught up: its own progress does not close the gap.
    fatal = _run(beat, clock, 400)
    assert fatal == "3 partitions held by no member of the group for 33s after 2 rejoins"
    assert beat.status().restarts == 2 and beat.status().unowned == 3
    assert _unowned_metric("gap") == 3


def test_a_gap_shorter_than_the_stall_time_is_a_rebalance_not_a_stall():
    clock, group = Clock(), Group(4, 4, 0)      # two answers with a gap, then all held
    beat = Heartbeat("rebalance", clock)
    beat.watch_group(group)
    assert _run(beat, clock, 400) is None
    status = beat.status()
    assert (status.restarts, status.state, status.unowned) == (0, "ok", 0)
    assert _unowned_metric("rebalance") == 0


def test_a_group_that_cannot_be_described_is_no_evidence_of_a_gap():
    clock = Clock()
    for name, group in (("unknown", Group(None)), ("failing", Group(OSError("refused")))):
        beat = Heartbeat(name, clock)
        beat.watch_group(group)
        assert _run(beat, clock, 400) is None
        assert beat.status().restarts == 0 and beat.status().unowned is None
        assert _unowned_metric(name) == -1


def test_the_group_is_asked_at_most_every_group_check_seconds():
    clock, group = Clock(), Group(0)
    beat = Heartbeat("often", clock)
    beat.watch_group(group)
    for _ in range(100):                        # a watchdog checking every second
        clock.now += 1
        _sweep(beat)
    assert group.asked == 100 // GROUP_CHECK_S


def test_a_gap_that_closes_after_a_rejoin_clears_the_count():
    clock, group = Clock(), Group(*[2] * 5, 0)
    beat = Heartbeat("closes", clock)
    beat.watch_group(group)
    assert _run(beat, clock, 1000) is None
    assert beat.status().restarts == 1 and beat.status().state == "ok"


def test_a_group_that_cannot_be_described_is_asked_less_often():
    """A broker that is away makes each question wait for its timeout, on the thread that
    checks every stage."""
    clock, group = Clock(), Group(None, None, 0)
    beat = Heartbeat("away", clock)
    beat.watch_group(group)
    asked_at = []
    for _ in range(200):
        clock.now += 1
        before = group.asked
        _sweep(beat)
        if group.asked > before:
            asked_at.append(clock.now)
    gaps = [b - a for a, b in zip(asked_at, asked_at[1:])]
    assert gaps[:3] == [GROUP_BACKOFF * GROUP_CHECK_S] * 2 + [GROUP_CHECK_S]


def test_the_watchdog_judges_every_stage_before_it_asks_any_group():
    """A question can wait for its timeout (5 s on Kafka); the next stage's stall must not."""
    registry = StageRegistry()
    asking, stalled = registry.add("asking"), registry.add("stalled")
    seen: list[bool] = []
    asking.watch_group(lambda: seen.append(stalled.rejoin_wanted()) or 0)
    config = LivenessConfig(stall_seconds=0.05)
    stalled.step(consumed=0, lag=7)
    time.sleep(0.1)                        # no progress with lag for longer than stall_seconds
    asking.step(consumed=1, lag=0)
    Watchdog(registry, config, on_fatal=pytest.fail).check()
    assert seen == [True], "the group was asked before the stalled stage was judged"


def test_a_member_left_out_of_its_group_rejoins_then_ends_the_process():
    """Its JoinGroup lost, the other member holding every partition: nothing is unowned and
    nobody has a lag, so only the member's own emptiness in a group that would give it
    partitions shows it."""
    clock, left_out = Clock(), Group(True)
    beat = Heartbeat("outside", clock)
    beat.watch_group(Group(0), left_out)
    fatal = None
    for _ in range(int(400 // STEP)):
        clock.now += STEP
        beat.step(consumed=0, lag=None)         # polls, holds nothing, owes nothing
        fatal = _sweep(beat)
        if fatal:
            break
        if beat.rejoin_wanted():
            beat.rejoined(ok=True)
    assert fatal is not None and fatal.startswith("held no partition for 33s") \
        and fatal.endswith("after 2 rejoins")
    assert beat.status().restarts == 2 and beat.status().left_out is True


def test_a_member_back_in_its_group_after_one_rejoin_is_fine():
    clock = Clock()
    beat = Heartbeat("back", clock)
    beat.watch_group(Group(0), Group(*[True] * 5, False))
    assert _run(beat, clock, 1000) is None
    status = beat.status()
    assert (status.restarts, status.state, status.left_out) == (1, "ok", False)


def test_a_short_spell_outside_the_group_is_a_join_not_a_stall():
    clock = Clock()
    beat = Heartbeat("joining", clock)
    beat.watch_group(Group(0), Group(True, True, False))     # 2 answers: under stall_seconds
    assert _run(beat, clock, 400) is None
    assert beat.status().restarts == 0

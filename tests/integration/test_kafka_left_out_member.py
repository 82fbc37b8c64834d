"""A stage whose member is left outside its group is brought back, not left idle.

Seen once in CI (session 25): of two members, one's JoinGroup got no answer, the broker formed
the group with the other alone, and that one took every partition. kafka-python waits for a
JoinGroup answer up to max_poll_interval + 5 s (305 s here), so the member sat outside for 5
minutes. Nothing is unowned and nobody has a lag, so neither the per-member checks nor
`unowned` see it: the member's own emptiness in a group that would give it partitions does
(`Consumer.left_out`). Reproduced by losing the first JoinGroup the late member sends.
"""
from __future__ import annotations

import threading
import time

import pytest
from kafka.coordinator.base import BaseCoordinator

from watchkeeper import liveness
from watchkeeper.bus import Names
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.indexer import Indexer
from watchkeeper.liveness import LivenessConfig, StageRegistry, Watchdog
from watchkeeper.store import open_store
from watchkeeper.worker import run_forever

pytestmark = pytest.mark.kafka

DEADLINE_S = 90


def _wait(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"after {seconds:.0f}s: {what}")


def test_a_member_whose_join_is_lost_is_rejoined_by_the_watchdog(
        kafka_url, unique, tmp_path, monkeypatch):
    names = Names(f"out{unique}")
    bus = KafkaBus(kafka_url, partitions=4)
    bus.ensure_topics(names.topics)
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    stop = threading.Event()
    first = Indexer(bus, store, names)         # joins alone and takes every partition
    first_beat = StageRegistry().add("index")
    loops = [threading.Thread(target=run_forever, args=(first, stop),
                              kwargs={"heartbeat": first_beat})]
    loops[0].start()
    _wait(lambda: first_beat.status().lag is not None, 60, "the first member never joined")

    joins = []
    real_join = BaseCoordinator._do_join_and_sync_async

    async def first_join_lost(self):
        joins.append(self)
        if len(joins) == 1:                    # the late member's JoinGroup: never answered
            await self._manager._net.sleep(3600)
        return await real_join(self)

    monkeypatch.setattr(BaseCoordinator, "_do_join_and_sync_async", first_join_lost)
    monkeypatch.setattr(liveness, "GROUP_CHECK_S", 1.0)
    late = Indexer(bus, store, names)
    registry = StageRegistry()
    beat = registry.add("index")
    fatal: list[str] = []
    watchdog = Watchdog(registry, LivenessConfig(stall_seconds=5, max_rejoins=2,
                                                 check_seconds=0.2), on_fatal=fatal.append)
    loops.append(threading.Thread(target=run_forever, args=(late, stop),
                                  kwargs={"heartbeat": beat}))
    loops[1].start()
    watchdog.start()
    seen_outside = threading.Event()
    try:
        _wait(lambda: beat.status().left_out and not seen_outside.set(), 30,
              "the late member was never seen left out")
        _wait(lambda: beat.status().restarts >= 1 and beat.status().lag is not None,
              DEADLINE_S, f"the late member never joined: {beat.status()}")
    finally:
        watchdog.stop()
        stop.set()
        for loop in loops:
            loop.join(60)
        store.close()
    assert not fatal, fatal
    assert beat.status().restarts == 1, beat.status()
    assert first_beat.status().lag is not None     # both hold a share now

"""A group join that outlasts poll() still ends with the member holding its partitions.

kafka-python 3.0 runs JoinGroup -> SyncGroup on its IO thread, and poll() gives up waiting
for it when its own timeout runs out (watchkeeper/bus/kafka_join.py says what then goes
wrong). Here the leader's assignment is slowed on the IO thread so that every join outlasts
the poll that started it; a real join waits as long for the other members to rejoin.
"""
from __future__ import annotations

import logging
import time

import pytest
from kafka.admin import KafkaAdminClient, NewPartitions
from kafka.coordinator.consumer import ConsumerCoordinator

from watchkeeper.bus.kafka import KafkaBus

pytestmark = pytest.mark.kafka

POLL_S = 0.2              # what a stage's poll waits at most
SLOW_ASSIGNMENT_S = 0.6   # each join takes longer than one poll
DEADLINE_S = 60           # two of the bus's metadata ages (10 s) and then some


@pytest.fixture
def slow_assignment(monkeypatch):
    def install():
        perform = ConsumerCoordinator._perform_assignment

        def slow(self, *args, **kwargs):
            time.sleep(SLOW_ASSIGNMENT_S)
            return perform(self, *args, **kwargs)

        monkeypatch.setattr(ConsumerCoordinator, "_perform_assignment", slow)
    return install


def _poll_until(consumer, holds: set, pause_s: float = 0.0) -> None:
    started = time.monotonic()
    while consumer.assigned() != holds:
        assert time.monotonic() - started < DEADLINE_S, \
            f"holds {sorted(consumer.assigned())} after {DEADLINE_S}s, not {sorted(holds)}"
        consumer.poll(100, timeout=POLL_S)
        time.sleep(pause_s)


def test_a_rejoin_for_new_partitions_that_outlasts_a_poll_still_brings_them(
        kafka_url, unique, slow_assignment):
    """The leader rejoins when a refresh shows new partitions; it used to drop that join and
    sit in the group holding nothing, its heartbeat off, until the broker removed it."""
    bus = KafkaBus(kafka_url, partitions=2)
    topic = f"wktest.join.{unique}"
    bus.ensure_topics((topic,))
    consumer = bus.consumer(f"wktest-join-{unique}", [topic])
    try:
        _poll_until(consumer, {(topic, 0), (topic, 1)})
        admin = KafkaAdminClient(bootstrap_servers=kafka_url.removeprefix("kafka://"))
        try:
            admin.create_partitions({topic: NewPartitions(total_count=4)})
        finally:
            admin.close()
        slow_assignment()
        _poll_until(consumer, {(topic, p) for p in range(4)})
    finally:
        consumer.close()


def test_a_join_that_finished_between_polls_is_taken_not_started_again(
        kafka_url, unique, slow_assignment, caplog):
    """A worker polls briefly, then works on its batch: the join finishes meanwhile. Starting
    a fresh JoinGroup instead of taking it made a leader rebalance its group at every poll
    and never hold anything. Every generation joined must be taken up (a first join can
    come before the topic's metadata and give nothing: then a second one follows)."""
    caplog.set_level(logging.INFO, logger="kafka.coordinator")
    bus = KafkaBus(kafka_url, partitions=2)
    topic = f"wktest.join.{unique}"
    bus.ensure_topics((topic,))
    slow_assignment()
    consumer = bus.consumer(f"wktest-join-{unique}", [topic])
    try:
        _poll_until(consumer, {(topic, 0), (topic, 1)}, pause_s=3 * SLOW_ASSIGNMENT_S)
        joined = [r for r in caplog.records if r.getMessage().startswith("Successfully joined")]
        taken = [r for r in caplog.records if r.getMessage().startswith("Setting newly assigned")]
        assert len(joined) == len(taken) == consumer._consumer.group_metadata().generation_id
    finally:
        consumer.close()

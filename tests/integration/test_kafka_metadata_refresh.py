"""A Kafka member that never hears about its topic's partitions must not wait five minutes.

kafka-python's consumer group leader assigns what its cached metadata knows: a topic it has no
metadata for yet is given to nobody, and the leader rejoins when a refresh brings the topic.
kafka-python can drop a requested refresh (`ClusterMetadata.update_metadata` clears the request
when an earlier refresh's answer lands), and then refreshes only when the metadata's age runs
out: 5 minutes by default, while the partitions sit unread (a CI run saw two detection workers
stay unassigned for 2 minutes). Here every requested refresh is dropped, so only the bus's own
`metadata_max_age_ms` can bring the partitions.
"""
from __future__ import annotations

import time

import pytest
from kafka.cluster import ClusterMetadata
from kafka.future import Future

from watchkeeper.bus.kafka import KafkaBus

pytestmark = pytest.mark.kafka

DEADLINE_S = 60      # well under kafka-python's default age (300 s), above ours (10 s)


def _dropped_request(cluster: ClusterMetadata) -> Future:
    """request_update() whose request is lost: the refresh loop runs, but on its own clock."""
    if cluster._manager is not None:
        cluster.start_refresh_loop()
    return Future()


def test_a_member_whose_metadata_requests_are_lost_still_gets_its_partitions(
        kafka_url, unique, monkeypatch):
    bus = KafkaBus(kafka_url, partitions=2)
    topic = f"wktest.metadata.{unique}"
    bus.ensure_topics((topic,))
    monkeypatch.setattr(ClusterMetadata, "request_update", _dropped_request)
    consumer = bus.consumer(f"wktest-metadata-{unique}", [topic])
    try:
        started = time.monotonic()
        while not consumer.assigned():
            assert time.monotonic() - started < DEADLINE_S, \
                f"no partitions after {DEADLINE_S}s: metadata is refreshed too seldom"
            consumer.poll(100, timeout=0.2)
        assert consumer.assigned() == {(topic, 0), (topic, 1)}
    finally:
        consumer.close()

"""The kafka-python producer's partitioner remembers key hashes (watchkeeper/bus/partition.py);
it must put every key where kafka-python's default (the Java client's murmur2) does, or the
re-keyed stages and the embedded bus would disagree with Kafka about who owns a key."""
from __future__ import annotations

import random

import pytest
from kafka.partitioner.default import DefaultPartitioner

from watchkeeper.bus.partition import CachedKeyPartitioner, partition_for


class Cluster:
    """The two ClusterMetadata calls a partitioner makes."""

    def __init__(self, partitions: dict[str, int]):
        self.partitions = partitions

    def topics(self):
        return set(self.partitions)

    def partitions_for_topic(self, topic):
        n = self.partitions.get(topic)
        return None if n is None else set(range(n))

    def available_partitions_for_topic(self, topic):
        return self.partitions_for_topic(topic) or set()


def test_every_key_lands_where_the_default_partitioner_puts_it():
    rng = random.Random(7)
    keys = [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
            for _ in range(2000)] + ["", "ü-user", "fe80::1", "a" * 300]
    cluster = Cluster({"one": 1, "four": 4, "seven": 7, "many": 64})
    cached, default = CachedKeyPartitioner(), DefaultPartitioner()
    for topic, n in cluster.partitions.items():
        for key in keys + keys[:50]:            # the second time from the cache
            raw = key.encode()
            got = cached.partition(topic, raw, raw, b"v", b"v", cluster)
            assert got == default.partition(topic, raw, raw, b"v", b"v", cluster)
            assert got == partition_for(key, n)


def test_keyless_records_and_unknown_topics_get_the_default_answers():
    cluster = Cluster({"four": 4})
    cached = CachedKeyPartitioner()
    assert {cached.partition("four", None, None, b"v", b"v", cluster)
            for _ in range(200)} == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="nope"):    # refused as the default refuses it
        cached.partition("nope", b"k", b"k", b"v", b"v", cluster)

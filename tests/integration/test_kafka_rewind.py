"""A consumer rewound while the broker is away fails with the bus's own error, which every
worker retries, never with kafka-python's (CI, session 27: `ingest` exited with
KafkaConnectionError when the broker restarted during a step's recovery: `rewind` asked the
coordinator for the committed offsets and nothing wrapped its error)."""
from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaConnectionError

from watchkeeper.bus import BusError, Names
from watchkeeper.bus.kafka import KafkaBus

pytestmark = pytest.mark.kafka


def test_a_rewind_while_the_broker_is_away_raises_the_bus_error(kafka_url, unique, monkeypatch):
    names = Names(f"rw{unique}")
    bus = KafkaBus(kafka_url, partitions=2)
    bus.ensure_topics(names.topics)
    producer = bus.producer()
    producer.send(names.events, b'{"n": 1}', key="a")
    producer.flush()
    consumer = bus.consumer(f"rw{unique}", [names.events])
    try:
        end = time.monotonic() + 60
        while not consumer.poll(100, timeout=1.0):
            assert time.monotonic() < end, "never assigned and read"
        consumer.rewind()                       # the broker is up: back to the commit

        def refused(self, partition, metadata=False, timeout_ms=None):
            raise KafkaConnectionError("111 ECONNREFUSED")   # what CI's restart gave
        monkeypatch.setattr(KafkaConsumer, "committed", refused)
        with pytest.raises(BusError, match="rewind"):
            consumer.rewind()
    finally:
        consumer.close()

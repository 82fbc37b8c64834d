"""Shared fixtures: the real services, and the rule that CI never skips them."""
from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

from tests.required import unavailable

KAFKA_URL = os.environ.get("WATCHKEEPER_TEST_KAFKA", "kafka://127.0.0.1:9092")
ES_URL = os.environ.get("WATCHKEEPER_TEST_ES", "http://127.0.0.1:9200")


def _reachable(url: str) -> bool:
    first = urlparse(url).netloc.split(",")[0]
    host, _, port = first.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def require_service(url: str, what: str) -> None:
    """In CI and `make test` a missing service fails the test; elsewhere it skips with the fix."""
    if _reachable(url):
        return
    unavailable(f"{what} not reachable at {url}: run `deploy/local/services start`")


_kafka_warm: list[bool] = []


def _warm_up_kafka(url: str, deadline_s: float = 180.0) -> None:
    """A freshly started broker answers before its group coordinator is ready (it creates
    __consumer_offsets on first use): wait until a consumer group really receives."""
    import time

    from watchkeeper.bus.kafka import KafkaBus
    bus = KafkaBus(url, partitions=1)
    topic = f"wktest.warmup.{uuid.uuid4().hex[:8]}"
    bus.ensure_topics((topic,))
    producer = bus.producer()
    producer.send(topic, b"warm", key="k")
    producer.flush()
    producer.close()
    consumer = bus.consumer(f"wktest-warmup-{uuid.uuid4().hex[:8]}", [topic])
    end = time.monotonic() + deadline_s
    try:
        while time.monotonic() < end:
            if consumer.poll(10, timeout=1.0):
                return
        pytest.fail(f"Kafka at {url} never delivered to a consumer group in {deadline_s:.0f}s")
    finally:
        consumer.close()


@pytest.fixture
def kafka_url() -> str:
    require_service(KAFKA_URL, "Kafka")
    if not _kafka_warm:
        _warm_up_kafka(KAFKA_URL)
        _kafka_warm.append(True)
    return KAFKA_URL


@pytest.fixture
def es_url() -> str:
    require_service(ES_URL, "Elasticsearch")
    return ES_URL


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topics, groups and index names so tests never collide."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def receiver():
    """A real local webhook receiver (tests/playbooks_support.py) counting every POST."""
    from tests.playbooks_support import Receiver
    made = Receiver()
    yield made
    made.close()

"""Kafka bus through kafka-python: batching, lz4 compression, acks=all, manual commits."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlparse

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import (KafkaConnectionError, KafkaError, KafkaTimeoutError,
                          TopicAlreadyExistsError)

from watchkeeper.bus.base import TOPICS, Bus, BusError, BusUnavailable, Consumer, Message, Producer

log = logging.getLogger(__name__)


# Fail fast with a clear line when no broker answers, instead of kafka-python's 30 s default.
_CONNECT = {"bootstrap_timeout_ms": 10_000}
_NO_BROKER = (KafkaTimeoutError, KafkaConnectionError)


def _servers(url: str) -> list[str]:
    netloc = urlparse(url).netloc
    servers = [s for s in netloc.split(",") if s]
    if not servers:
        raise ValueError(f"bus URL {url!r} names no broker: use kafka://HOST:PORT")
    return servers


def _wait_for_leaders(admin, topics: list[str], timeout_s: float = 30.0) -> None:
    """New topics are usable once every partition has a leader; creating them returns
    earlier, and a consumer group formed in between would get no partitions for them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = admin.describe_topics(topics)
        if all(not t.get("error_code") and t.get("partitions")
               and all(p.get("leader_id", -1) >= 0 for p in t["partitions"]) for t in described):
            return
        time.sleep(0.2)
    log.warning("topics %s still have partitions without a leader after %.0f s",
                ", ".join(topics), timeout_s)


def _unavailable(servers: list[str]) -> BusUnavailable:
    return BusUnavailable(
        f"cannot reach Kafka at {','.join(servers)}: start it (deploy/local/services start) "
        "or point --bus / WATCHKEEPER_BUS at a running broker")


class KafkaBus(Bus):
    def __init__(self, url: str, partitions: int = 4):
        self.url = url
        self.partitions = partitions
        self.servers = _servers(url)

    def producer(self) -> Producer:
        return KafkaBusProducer(self.servers)

    def consumer(self, group: str, topics) -> Consumer:
        return KafkaBusConsumer(self.servers, group, list(topics))

    def ensure_topics(self, topics: tuple[str, ...] = TOPICS) -> None:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.servers, client_id="watchkeeper-admin",
                                     **_CONNECT)
        except _NO_BROKER:
            raise _unavailable(self.servers) from None
        try:
            existing = set(admin.list_topics())
            missing = [NewTopic(t, self.partitions, 1) for t in topics if t not in existing]
            if missing:
                try:
                    admin.create_topics(missing)
                except TopicAlreadyExistsError:
                    pass  # another process won the race: fine
                _wait_for_leaders(admin, [t.name for t in missing])
        finally:
            admin.close()


class KafkaBusProducer(Producer):
    """Delivery is confirmed by callbacks that count failures, not by keeping a future per
    message (a collector that ran for days kept millions): memory stays bounded by
    kafka-python's own `buffer_memory`. `flush()` raises if any send since the last flush
    failed."""

    def __init__(self, servers: list[str]):
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=servers, **_CONNECT, acks="all", linger_ms=20, batch_size=512 * 1024,
                compression_type="lz4", max_request_size=8 * 1024 * 1024, retries=5)
        except _NO_BROKER:
            raise _unavailable(servers) from None
        self._lock = threading.Lock()
        self._sent = 0
        self._failed = 0
        self._first_error: BaseException | None = None

    def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        encoded = key.encode() if key is not None else None
        future = self._producer.send(topic, value=value, key=encoded)
        with self._lock:
            self._sent += 1
        future.add_errback(self._on_error)

    def _on_error(self, exc: BaseException) -> None:
        with self._lock:
            self._failed += 1
            if self._first_error is None:
                self._first_error = exc

    def flush(self) -> None:
        self._producer.flush()
        with self._lock:
            sent, failed, first = self._sent, self._failed, self._first_error
            self._sent, self._failed, self._first_error = 0, 0, None
        if failed:
            error = BusError(f"{failed} of {sent} messages were not stored: {first}")
            error.failed = failed
            raise error

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()


class KafkaBusConsumer(Consumer):
    def __init__(self, servers: list[str], group: str, topics: list[str]):
        try:
            self._consumer = KafkaConsumer(
                *topics, bootstrap_servers=servers, **_CONNECT, group_id=group, enable_auto_commit=False,
                auto_offset_reset="earliest", max_poll_records=5000,
                fetch_max_bytes=32 * 1024 * 1024, session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000, max_poll_interval_ms=300_000)
        except _NO_BROKER:
            raise _unavailable(servers) from None

    def poll(self, max_records: int = 1000, timeout: float = 1.0) -> list[Message]:
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        out: list[Message] = []
        for tp, records in batches.items():
            out.extend(Message(tp.topic, tp.partition, r.offset,
                               r.key.decode() if r.key is not None else None, r.value,
                               r.timestamp) for r in records)
        return out

    def commit(self) -> None:
        try:
            self._consumer.commit()
        except KafkaError as exc:
            # A rebalance took our partitions: the new owner re-reads from the last commit.
            raise BusError(f"commit failed: {exc}") from exc

    def lag(self) -> int | None:
        assigned = list(self._consumer.assignment())
        if not assigned:
            return None
        ends = self._consumer.end_offsets(assigned)
        return sum(max(0, ends[tp] - self._consumer.position(tp)) for tp in assigned)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


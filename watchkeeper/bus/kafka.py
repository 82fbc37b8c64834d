"""Kafka bus through kafka-python: batching, lz4 compression, acks=all, manual commits."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlparse

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata, TopicPartition
from kafka.errors import (KafkaConnectionError, KafkaError, KafkaTimeoutError,
                          TopicAlreadyExistsError)

from watchkeeper.bus.base import TOPICS, Bus, BusError, BusUnavailable, Consumer, Message, Producer
from watchkeeper.bus.group import CONNECT, GroupOwnership
from watchkeeper.bus.kafka_join import mend_group_join
from watchkeeper.bus.partition import CachedKeyPartitioner

log = logging.getLogger(__name__)


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
    def __init__(self, url: str, partitions: int = 4, fetch_wait_ms: int | None = None):
        self.url = url
        self.partitions = partitions
        self.servers = _servers(url)
        self.fetch_wait_ms = fetch_wait_ms

    def producer(self) -> Producer:
        return KafkaBusProducer(self.servers)

    def consumer(self, group: str, topics) -> Consumer:
        return KafkaBusConsumer(self.servers, group, list(topics), self.fetch_wait_ms)

    def ensure_topics(self, topics: tuple[str, ...] = TOPICS) -> None:
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.servers, client_id="watchkeeper-admin",
                                     **CONNECT)
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
                bootstrap_servers=servers, **CONNECT, acks="all", linger_ms=20, batch_size=512 * 1024,
                compression_type="lz4", max_request_size=8 * 1024 * 1024,
                partitioner=CachedKeyPartitioner(),
                # Retries are bounded by time, not count, so a broker restart (tens of
                # seconds) is ridden out; 5 retries of 100 ms gave up within a second.
                delivery_timeout_ms=120_000)
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


# Every blocking consumer call has a bound: kafka-python's position() and committed() wait
# for ever by default (seen spinning in ensure_coordinator_ready once the broker had dropped
# the member); a bounded call returns to our loop, where the liveness watchdog can act.
_CALL_TIMEOUT_MS = 10_000
ASK_ENDS_S = 5.0            # lag: the broker's partition ends at least this often
# metadata_max_age_ms: a group leader that assigned before it had a topic's metadata gives
# nobody that topic, and rejoins only when a metadata refresh brings it. kafka-python clears a
# requested refresh when an earlier refresh's answer lands (ClusterMetadata.update_metadata),
# and then waits the full age: 5 minutes by default, with the partitions unread. 10 s bounds
# that; the refresh asks only for the subscribed topics.
_CONSUMER = dict(enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=5000,
                 fetch_max_bytes=32 * 1024 * 1024, session_timeout_ms=10_000,
                 heartbeat_interval_ms=1_000, max_poll_interval_ms=300_000,
                 request_timeout_ms=30_000, metadata_max_age_ms=10_000)


def _known(end: int | None) -> int:
    return -1 if end is None else end      # None: that partition has not been fetched yet


class KafkaBusConsumer(Consumer):
    exact_lag = True        # a lag of 0 is always the broker's answer (lag() below)

    def __init__(self, servers: list[str], group: str, topics: list[str],
                 fetch_wait_ms: int | None = None):
        """`fetch_wait_ms`: how long a fetch waits at the broker for data (kafka-python's
        `fetch_max_wait_ms`, 500 by default). The broker answers a connection's requests in
        order, so every lag() of a caught-up member waits behind that fetch; `ingest`, which
        asks after every step of its final drains, sets it lower (open_bus's docstring)."""
        self._servers, self._group, self._topics = servers, group, topics
        self._options = _CONSUMER if fetch_wait_ms is None else {
            **_CONSUMER, "fetch_max_wait_ms": fetch_wait_ms}
        self._ends_asked_at = 0.0
        self._asked_ends: dict[TopicPartition, int] = {}
        self._consumer: KafkaConsumer | None = None
        self._holds: int | None = None      # partitions held after the last poll
        self._ownership = GroupOwnership(servers, group, topics, held=lambda: self._holds)
        self._open()

    def _open(self) -> KafkaConsumer:
        self._holds = None
        try:
            self._consumer = mend_group_join(KafkaConsumer(
                *self._topics, bootstrap_servers=self._servers, **CONNECT, group_id=self._group,
                **self._options))
        except _NO_BROKER:
            raise _unavailable(self._servers) from None
        return self._consumer

    def _live(self) -> KafkaConsumer:
        """The member, re-created if a rejoin could not create it."""
        return self._consumer if self._consumer is not None else self._open()

    def poll(self, max_records: int = 1000, timeout: float = 1.0) -> list[Message]:
        consumer = self._live()
        try:
            batches = consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        except KafkaError as exc:
            raise BusError(f"poll failed: {exc}") from exc
        self._holds = len(consumer.assignment())
        out: list[Message] = []
        for tp, records in batches.items():
            out.extend(Message(tp.topic, tp.partition, r.offset,
                               r.key.decode() if r.key is not None else None, r.value,
                               r.timestamp) for r in records)
        return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        explicit = None if offsets is None else {
            TopicPartition(topic, part): OffsetAndMetadata(offset, "", -1)
            for (topic, part), offset in offsets.items()}
        try:
            self._live().commit(offsets=explicit, timeout_ms=_CALL_TIMEOUT_MS)
        except KafkaError as exc:
            # A rebalance took our partitions: the new owner re-reads from the last commit.
            raise BusError(f"commit failed: {exc}") from exc

    def assigned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._live().assignment()}

    def rewind(self) -> None:
        consumer = self._live()
        try:
            for tp in consumer.assignment():
                committed = consumer.committed(tp, timeout_ms=_CALL_TIMEOUT_MS)
                if committed is None:
                    consumer.seek_to_beginning(tp)   # auto_offset_reset is "earliest"
                else:
                    consumer.seek(tp, committed)
        except KafkaError as exc:
            # The broker is away (restarting): a worker retries its step, it must not die of
            # kafka-python's own error (CI, session 27: `ingest` exited mid-restart).
            raise BusError(f"rewind: {exc}") from exc

    def lag(self) -> int | None:
        consumer = self._live()
        assigned = list(consumer.assignment())
        if not assigned:
            return None
        try:
            positions = [consumer.position(tp, timeout_ms=_CALL_TIMEOUT_MS) for tp in assigned]
            if any(p is None for p in positions):
                return None   # positions not known yet (joining, or the coordinator is away)
            # Asked every stage step: the ends the last fetch brought (no round trip), and the
            # broker's own every ASK_ENDS_S or while a partition has not been fetched yet (a
            # fetcher that stopped must not hide a lag from the liveness watchdog). An end
            # only grows: the larger of the fetched and the last asked one. A lag of 0 is
            # always confirmed by the broker: kafka-python fetches only inside poll(), so the
            # cached ends miss what was published since, and callers act on 0 (`drain` ends,
            # the watchdog clears a stall). Costs one round trip per step only while caught up.
            ends = {tp: max(_known(consumer.highwater(tp)), self._asked_ends.get(tp, -1))
                    for tp in assigned}
            if time.monotonic() - self._ends_asked_at >= ASK_ENDS_S \
                    or any(end < 0 for end in ends.values()) \
                    or all(ends[tp] <= pos for tp, pos in zip(assigned, positions)):
                ends = self._asked_ends = consumer.end_offsets(assigned,
                                                               timeout_ms=_CALL_TIMEOUT_MS)
                self._ends_asked_at = time.monotonic()
        except KafkaError as exc:
            raise BusError(f"lag: {exc}") from exc
        return sum(max(0, ends[tp] - pos) for tp, pos in zip(assigned, positions))

    def unowned(self) -> int | None:
        return self._ownership.unowned()

    def left_out(self) -> bool | None:
        return self._ownership.left_out()

    def rejoin(self) -> None:
        self._leave()
        self._open()

    def close(self) -> None:
        self._leave()
        self._ownership.close()

    def _leave(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            consumer.close(autocommit=False, timeout_ms=_CALL_TIMEOUT_MS)
        except KafkaError as exc:   # leaving a group the broker already dropped us from
            log.debug("closing consumer of %s: %s", self._group, exc)

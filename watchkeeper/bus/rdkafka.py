"""Kafka bus through confluent-kafka (librdkafka): an optional, faster client.

kafka-python stays the client the project depends on (`kafka://`). `kafka+rdkafka://HOST:PORT`
selects this one when the `rdkafka` extra is installed (`pip install 'watchkeeper[rdkafka]'`):
the same topics, groups, keys and partitions (librdkafka's `murmur2_random` partitioner is
Kafka's default, as `partition.partition_for` computes it), the same contract suite
(tests/contract/test_bus.py runs on both). Why: producing and consuming are C in librdkafka,
with its own threads for batching, compression and fetching; in kafka-python they are Python
on the stage's own interpreter, the largest single cost of the source-keyed detection stage
(bench/RESULTS.md). Topics are created, and a group's ownership is described, with kafka-python's
admin client (not hot paths).
"""
from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer as RdConsumer, KafkaError, \
    KafkaException, Producer as RdProducer, TopicPartition

from watchkeeper.bus.base import BusError, Consumer, Message, Producer
from watchkeeper.bus.group import GroupOwnership
from watchkeeper.bus.kafka import KafkaBus

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 10.0      # every blocking call has a bound, as in bus/kafka.py
_SERVE_EVERY = 1000         # sends between serving delivery reports


class RdKafkaBus(KafkaBus):
    def producer(self) -> Producer:
        return RdKafkaProducer(self.servers)

    def consumer(self, group: str, topics) -> Consumer:
        return RdKafkaConsumer(self.servers, group, list(topics))


class RdKafkaProducer(Producer):
    """Delivery reports count failures (no future per message); `flush()` raises if any send
    since the last flush failed, as the kafka-python producer does."""

    def __init__(self, servers: list[str]):
        self._producer = RdProducer({
            "bootstrap.servers": ",".join(servers), "acks": "all", "linger.ms": 20,
            "batch.size": 512 * 1024, "compression.type": "lz4",
            "message.max.bytes": 8 * 1024 * 1024, "partitioner": "murmur2_random",
            # bounded by time, so a broker restart is ridden out (bus/kafka.py's 120 s)
            "message.timeout.ms": 120_000,
            "queue.buffering.max.kbytes": 64 * 1024})
        self._lock = threading.Lock()
        self._sent = self._failed = self._unserved = 0
        self._first_error: object = None

    def send(self, topic: str, value: bytes, key: str | None = None) -> None:
        encoded = key.encode() if key is not None else None
        while True:
            try:
                self._producer.produce(topic, value, encoded, on_delivery=self._on_delivery)
                break
            except BufferError:             # the local queue is full: let it drain
                self._producer.poll(0.05)
        with self._lock:
            self._sent += 1
            self._unserved += 1
            serve = self._unserved >= _SERVE_EVERY
            if serve:
                self._unserved = 0
        if serve:
            self._producer.poll(0)          # run the delivery reports due so far

    def _on_delivery(self, error, _message) -> None:
        if error is None:
            return
        with self._lock:
            self._failed += 1
            if self._first_error is None:
                self._first_error = error

    def flush(self) -> None:
        left = self._producer.flush()       # waits at most message.timeout.ms per message
        with self._lock:
            sent, failed, first = self._sent, self._failed + left, self._first_error
            self._sent = self._failed = 0
            self._first_error = None
        if failed:
            error = BusError(f"{failed} of {sent} messages were not stored: "
                             f"{first or 'still queued after the delivery timeout'}")
            error.failed = failed
            raise error

    def close(self) -> None:
        self.flush()


class RdKafkaConsumer(Consumer):
    def __init__(self, servers: list[str], group: str, topics: list[str]):
        self._conf = {
            "bootstrap.servers": ",".join(servers), "group.id": group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000,
            "max.poll.interval.ms": 300_000, "fetch.max.bytes": 32 * 1024 * 1024,
            "queued.max.messages.kbytes": 64 * 1024,
            # A topic subscribed before it exists (a re-keyed topic a detection stage creates)
            # is found at the next metadata refresh: 1 s, not librdkafka's 5 min.
            "topic.metadata.refresh.interval.ms": 1000}
        self._topics = topics
        self._consumer: RdConsumer | None = None
        self._holds: int | None = None      # partitions held after the last poll
        self._ownership = GroupOwnership(servers, group, topics, held=lambda: self._holds)
        self._open()

    def _open(self) -> RdConsumer:
        self._holds = None
        self._consumer = RdConsumer(self._conf)
        self._consumer.subscribe(self._topics)
        return self._consumer

    def _live(self) -> RdConsumer:
        return self._consumer if self._consumer is not None else self._open()

    def poll(self, max_records: int = 1000, timeout: float = 1.0) -> list[Message]:
        # consume() waits until it has num_messages or the timeout passes; a stage wants what
        # has arrived (as kafka-python's poll gives), waiting only while nothing has. Error
        # events (a subscribed topic not created yet) are not messages: keep waiting.
        consumer = self._live()
        deadline = time.monotonic() + timeout
        try:
            out = self._messages(consumer.consume(num_messages=max_records, timeout=0))
            while not out and (left := deadline - time.monotonic()) > 0:
                first = consumer.consume(num_messages=1, timeout=left)
                if not first:
                    break
                out = self._messages(first)
                if out and max_records > 1:
                    out += self._messages(consumer.consume(num_messages=max_records - 1,
                                                           timeout=0))
            self._holds = len(consumer.assignment())
        except KafkaException as exc:
            raise BusError(f"poll failed: {exc}") from exc
        return out

    def _messages(self, records) -> list[Message]:
        out: list[Message] = []
        for r in records:
            error = r.error()
            if error is not None:
                if error.fatal():
                    raise BusError(f"poll failed: {error}")
                log.warning("consumer of %s: %s", self._conf["group.id"], error)
                continue
            key = r.key()
            out.append(Message(r.topic(), r.partition(), r.offset(),
                               key.decode() if key is not None else None, r.value(),
                               r.timestamp()[1]))
        return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        try:
            if offsets is None:
                self._live().commit(asynchronous=False)
            elif offsets:
                self._live().commit(offsets=[TopicPartition(t, p, o)
                                             for (t, p), o in offsets.items()],
                                    asynchronous=False)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError._NO_OFFSET:
                return                      # nothing consumed since the last commit
            raise BusError(f"commit failed: {exc}") from exc

    def _committed(self, assigned: list[TopicPartition]) -> list[TopicPartition]:
        return self._live().committed(assigned, timeout=_CALL_TIMEOUT_S)

    def assigned(self) -> set[tuple[str, int]]:
        return {(tp.topic, tp.partition) for tp in self._live().assignment()}

    def rewind(self) -> None:
        consumer = self._live()
        try:
            for tp in self._committed(consumer.assignment()):
                consumer.seek(TopicPartition(tp.topic, tp.partition,
                                             tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
        except KafkaException as exc:       # the broker is away: the worker retries
            raise BusError(f"rewind: {exc}") from exc

    def lag(self) -> int | None:
        consumer = self._live()
        assigned = consumer.assignment()
        if not assigned:
            return None
        try:
            positions = consumer.position(assigned)
            committed: dict | None = None
            total = 0
            for tp in positions:
                # The ends the last fetch response brought: librdkafka fetches on its own
                # thread whether or not poll() is called (a fetch waits at the broker until
                # data arrives), so they are milliseconds old, and a lag of 0 can be trusted
                # (`drain` ends on it). The broker is asked only for a partition not fetched
                # yet: the request queues behind the connection's waiting fetch (up to
                # fetch.wait.max.ms each), and asking every partition every 5 s made an idle
                # 12-partition stage spend ~6 s per step in lag().
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    low, high = consumer.get_watermark_offsets(tp, timeout=_CALL_TIMEOUT_S)
                offset = tp.offset
                if offset < 0:      # nothing fetched yet: the next read starts at the commit
                    if committed is None:
                        committed = {(c.topic, c.partition): c.offset
                                     for c in self._committed(assigned)}
                    offset = committed.get((tp.topic, tp.partition), -1)
                    offset = offset if offset >= 0 else low
                total += max(0, high - offset)
        except KafkaException as exc:
            raise BusError(f"lag: {exc}") from exc
        return total

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
            consumer.close()
        except KafkaException as exc:
            log.debug("closing consumer of %s: %s", self._conf["group.id"], exc)

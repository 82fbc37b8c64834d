"""Collector side of the bus: validate each event, key it by its entity, send it.

Every collector (capture, NetFlow, syslog, tailers) publishes through one EventPublisher:
`publish(doc)` for a parsed event, `reject(reason, raw)` for input it could not parse. Both
count (Prometheus `watchkeeper_records_total{stage=<collector>}`) and neither raises on bad
data, so a collector never dies of its input.

With `partitions` (the bus's partition count; the app's collectors set it), events for the
events topic go out in batches (watchkeeper/batches.py): held per partition for at most
`linger_s`, then one message each, so the bus's per-message cost is paid per batch.

The producer is flushed every `flush_every_s` (by a timer thread, started on the first send)
and every `flush_every_n` messages, not only at stop: a long-running collector confirms its
sends as it goes, and the producer never holds an unbounded backlog. A failed timed flush is
logged (rate-limited) and counted in `watchkeeper_bus_send_failures_total{stage}`.
"""
from __future__ import annotations

import logging
import threading
import time

from watchkeeper import codec, metrics, ratelog, schema
from watchkeeper.batches import PartitionBatches
from watchkeeper.bus import BusError, Names, Producer
from watchkeeper.deadletter import send_deadletter

log = logging.getLogger(__name__)
ratelog.limit(log)
FLUSH_EVERY_S = 1.0
FLUSH_EVERY_N = 10_000
LINGER_S = 0.05     # a batch waits at most this long for more events (kafka-python: 20 ms)


class EventPublisher:
    def __init__(self, producer: Producer, stage: str, names: Names = Names(),
                 key_field: str = "source.ip", flush_every_s: float = FLUSH_EVERY_S,
                 flush_every_n: int = FLUSH_EVERY_N, partitions: int | None = None,
                 linger_s: float = LINGER_S):
        self.producer = producer
        self.stage = stage
        self.names = names
        self.key_field = key_field
        self.flush_every_s = flush_every_s
        self.flush_every_n = flush_every_n
        self.published = 0
        self.rejected = 0
        self._unflushed = 0
        self._lock = threading.Lock()   # listeners publish from several threads
        self._flush_lock = threading.Lock()
        self._closed = threading.Event()
        self._timer: threading.Thread | None = None
        self.linger_s = linger_s
        self._batches = PartitionBatches(partitions) if partitions else None
        self._batch_lock = threading.Lock()

    def publish(self, doc: dict, topic: str | None = None) -> bool:
        """Send a valid event to wk.events (or `topic`); dead-letter an invalid one."""
        try:
            schema.validate(doc)
            value = codec.encode(doc)
        except (schema.ValidationError, TypeError, ValueError) as exc:
            self.reject(f"{type(exc).__name__}: {exc}", repr(doc)[:65536], kind="validation_error")
            return False
        self._send(topic or self.names.events, value, schema.get(doc, self.key_field))
        with self._lock:
            self.published += 1
        self._sent()
        metrics.RECORDS.labels(stage=self.stage, outcome="accepted").inc()
        return True

    def publish_lines(self, chunk: bytes, topic: str | None = None) -> int:
        """Send JSON lines our own encoders wrote (the capture's compiled flow writer, whose
        lines are byte-identical to `codec.encode` of the dict documents: tests/unit/
        collectors/test_flowjson.py) as they are, keyed by their source.ip (one message per
        line, or in batches with `partitions`): no dict, decode or validation per event,
        which cost the live capture path ~5x its flow meter. The first line of every chunk
        is still validated; if it fails, every line of the chunk goes through `publish`
        (validated one by one, the bad ones dead-lettered with their reason), so an encoder
        that goes wrong loses nothing and publishes nothing invalid."""
        lines = chunk.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        if not lines:
            return 0
        try:
            schema.validate(codec.decode(lines[0]))
        except (schema.ValidationError, ValueError, TypeError):
            return sum(self._publish_line(value, topic) for value in lines)
        target = topic or self.names.events
        if self._batches is None or target != self.names.events:
            for value in lines:
                self.producer.send(target, value, key=_source_ip(value))
        else:
            with self._batch_lock:
                for value in lines:
                    self._batches.add(self.producer, target, _source_ip(value), value)
        with self._lock:
            self.published += len(lines)
            self._unflushed += len(lines) - 1       # _sent() counts the last one
        self._sent()
        metrics.RECORDS.labels(stage=self.stage, outcome="accepted").inc(len(lines))
        return len(lines)

    def _send(self, topic: str, value: bytes, key: str | None) -> None:
        # only the events topic's readers split batches (a tailer's alerts go to the alerting
        # stage's topic one by one)
        if self._batches is None or topic != self.names.events:
            self.producer.send(topic, value, key=key)
            return
        with self._batch_lock:
            self._batches.add(self.producer, topic, key, value)

    def _send_held(self) -> None:
        if self._batches is not None:
            with self._batch_lock:
                self._batches.send_all(self.producer)

    def _publish_line(self, value: bytes, topic: str | None) -> bool:
        try:
            doc = codec.decode(value)
        except ValueError as exc:
            self.reject(f"{type(exc).__name__}: {exc}", value[:65536], kind="validation_error")
            return False
        if not isinstance(doc, dict):
            self.reject("not a JSON object", value[:65536], kind="validation_error")
            return False
        return self.publish(doc, topic)

    def reject(self, reason: str, raw: bytes | str, position: str | None = None,
               kind: str | None = None) -> None:
        """Input that could not be parsed: counted and kept in wk.deadletter with its reason
        (`kind`: one of deadletter.REASON_KINDS, classified from `reason` when not given)."""
        with self._lock:
            self.rejected += 1
        send_deadletter(self.producer, self.names, self.stage, reason, raw, position=position,
                        kind=kind)
        self._sent()

    def flush(self) -> None:
        """Block until everything sent so far is stored; BusError if something was not."""
        with self._flush_lock:
            with self._lock:
                self._unflushed = 0
            self._send_held()
            self.producer.flush()

    def close(self) -> None:
        """Stop the timer and flush what is left."""
        self._closed.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(timeout=30)
        self.flush()

    def _sent(self) -> None:
        with self._lock:
            self._unflushed += 1
            due = self._unflushed >= self.flush_every_n
            start = self._timer is None and not self._closed.is_set()
            if start:
                self._timer = threading.Thread(target=self._tick, daemon=True,
                                               name=f"wk-flush-{self.stage}")
        if start:
            self._timer.start()
        if due:
            self._flush_counted()

    def _tick(self) -> None:
        """Flush every flush_every_s; in between, send held batches every linger_s."""
        wait = self.flush_every_s if self._batches is None else min(self.linger_s,
                                                                      self.flush_every_s)
        flushed = time.monotonic()
        while not self._closed.wait(wait):
            if self._batches is None or time.monotonic() - flushed >= self.flush_every_s:
                flushed = time.monotonic()
                if self._unflushed:
                    self._flush_counted()
            else:
                try:
                    self._send_held()
                except Exception as exc:  # noqa: BLE001 - the timer must outlive a failed send
                    metrics.SEND_FAILURES.labels(stage=self.stage).inc()
                    log.error("%s: batch not sent: %s", self.stage, exc)

    def _flush_counted(self) -> None:
        try:
            self.flush()
        except BusError as exc:
            metrics.SEND_FAILURES.labels(stage=self.stage).inc(getattr(exc, "failed", 1))
            log.error("%s: sends not stored on the bus: %s", self.stage, exc)


_SOURCE_IP = b'"source":{"ip":"'


def _source_ip(line: bytes) -> str | None:
    """The key `publish` takes from a document (`source.ip`), read from its JSON line: the
    pattern's quotes are unescaped, so it cannot match inside a string value."""
    at = line.find(_SOURCE_IP)
    if at < 0:
        return None
    at += len(_SOURCE_IP)
    end = line.find(b'"', at)
    return line[at:end].decode(errors="replace") if end >= 0 else None

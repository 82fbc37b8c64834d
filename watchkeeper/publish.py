"""Collector side of the bus: validate each event, key it by its entity, send it.

Every collector (capture, NetFlow, syslog, tailers) publishes through one EventPublisher:
`publish(doc)` for a parsed event, `reject(reason, raw)` for input it could not parse. Both
count (Prometheus `watchkeeper_records_total{stage=<collector>}`) and neither raises on bad
data, so a collector never dies of its input.
"""
from __future__ import annotations

import threading

from watchkeeper import codec, metrics, schema
from watchkeeper.bus import Names, Producer
from watchkeeper.deadletter import send_deadletter


class EventPublisher:
    def __init__(self, producer: Producer, stage: str, names: Names = Names(),
                 key_field: str = "source.ip"):
        self.producer = producer
        self.stage = stage
        self.names = names
        self.key_field = key_field
        self.published = 0
        self.rejected = 0
        self._lock = threading.Lock()   # listeners publish from several threads

    def publish(self, doc: dict, topic: str | None = None) -> bool:
        """Send a valid event to wk.events (or `topic`); dead-letter an invalid one."""
        try:
            schema.validate(doc)
            value = codec.encode(doc)
        except (schema.ValidationError, TypeError, ValueError) as exc:
            self.reject(f"{type(exc).__name__}: {exc}", repr(doc)[:65536])
            return False
        self.producer.send(topic or self.names.events, value, key=schema.get(doc, self.key_field))
        with self._lock:
            self.published += 1
        metrics.RECORDS.labels(stage=self.stage, outcome="accepted").inc()
        return True

    def reject(self, reason: str, raw: bytes | str, position: str | None = None) -> None:
        """Input that could not be parsed: counted and kept in wk.deadletter with its reason."""
        with self._lock:
            self.rejected += 1
        send_deadletter(self.producer, self.names, self.stage, reason, raw, position=position)

    def flush(self) -> None:
        self.producer.flush()

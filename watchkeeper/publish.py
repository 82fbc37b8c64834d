"""Collector side of the bus: validate each event, key it by its entity, send it."""
from __future__ import annotations

from watchkeeper import codec, metrics, schema
from watchkeeper.bus import Names, Producer
from watchkeeper.deadletter import send_deadletter


class EventPublisher:
    def __init__(self, producer: Producer, stage: str, names: Names = Names(),
                 key_field: str = "source.ip"):
        self.producer = producer
        self.names = names
        self.stage = stage
        self.key_field = key_field
        self.published = 0
        self.rejected = 0

    def publish(self, doc: dict) -> bool:
        """Send a valid event to wk.events; dead-letter an invalid one. Never raises on bad data."""
        try:
            schema.validate(doc)
            value = codec.encode(doc)
        except (schema.ValidationError, TypeError, ValueError) as exc:
            self.rejected += 1
            send_deadletter(self.producer, self.names, self.stage, f"{type(exc).__name__}: {exc}",
                            repr(doc)[:65536])
            return False
        self.producer.send(self.names.events, value, key=schema.get(doc, self.key_field))
        self.published += 1
        metrics.RECORDS.labels(stage=self.stage, outcome="accepted").inc()
        return True

    def flush(self) -> None:
        self.producer.flush()

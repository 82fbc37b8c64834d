"""Indexer stage: events, alerts and dead letters from the bus into the store."""
from __future__ import annotations

import time

from watchkeeper import codec, metrics, schema
from watchkeeper.bus import Bus, Message, Names
from watchkeeper.deadletter import send_deadletter
from watchkeeper.store import Store, StoreError
from watchkeeper.worker import StepResult



class Indexer:
    name = "index"

    def __init__(self, bus: Bus, store: Store, names: Names = Names(), retry_s: float = 1.0):
        self.store = store
        self.names = names
        self.kind_by_topic = {names.events: "events", names.alerts: "alerts",
                              names.deadletter: "deadletter"}
        self.consumer = bus.consumer(names.group(self.name), list(self.kind_by_topic))
        self.producer = bus.producer()
        self.retry_s = retry_s

    def step(self, max_records: int = 5000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        if not messages:
            return StepResult()
        batches, bad = self._sort(messages)
        written = self._write_until_stored(batches)
        self.producer.flush()     # dead letters are stored before their offsets are committed
        self.consumer.commit()
        metrics.RECORDS.labels(stage=self.name, outcome="written").inc(written)
        return StepResult(consumed=len(messages), written=written, deadlettered=bad)

    def _sort(self, messages: list[Message]) -> tuple[dict[str, dict[str, dict]], int]:
        """Group valid documents by kind (last write of an id wins); dead-letter the rest."""
        batches: dict[str, dict[str, dict]] = {kind: {} for kind in self.kind_by_topic.values()}
        bad = 0
        for msg in messages:
            try:
                doc = schema.validate(codec.decode(msg.value))
            except (codec.DecodeError, schema.ValidationError) as exc:
                bad += 1
                if msg.topic != self.names.deadletter:   # never loop a broken dead letter
                    send_deadletter(self.producer, self.names, self.name, f"{type(exc).__name__}: {exc}",
                                    msg.value, msg.topic, f"{msg.topic}:{msg.partition}:{msg.offset}")
                continue
            batches[self.kind_by_topic[msg.topic]][doc["event"]["id"]] = doc
        return batches, bad

    def _write_until_stored(self, batches: dict[str, dict[str, dict]]) -> int:
        """Retry the same batch: committing past unwritten documents would lose them."""
        attempt = 0
        while True:
            try:
                return sum(self.store.bulk_upsert(kind, list(docs.values()))
                           for kind, docs in batches.items() if docs)
            except StoreError:
                attempt += 1
                if attempt >= 5:
                    raise   # the caller's loop backs off; offsets stay uncommitted
                time.sleep(self.retry_s * attempt)

    def reset(self) -> None:
        self.consumer.rewind()

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()

"""Indexer stage: events, alerts and dead letters from the bus into the store.

Trusted topics (our own producers validated every document before sending it: the event
publisher, the alerting stage) are not decoded and validated again: events go to the store
as the bytes they arrived in (`Store.put_raw`; a message may hold a batch of them,
watchkeeper/batches.py), alerts are decoded only (the store merges
them with the analyst's fields). Untrusted topics (`trusted=()`, and always the dead-letter
topic) are decoded and validated, and bad input is dead-lettered.

Writes overlap with consuming: a batch's write runs in a writer thread while the next batch
is polled and sorted; up to `in_flight` writes run at once. Offsets are committed in poll
order, each batch's only once it and every batch before it are stored, so a crash loses
nothing (uncommitted batches are read again) and duplicates nothing (writes are by id).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from watchkeeper import batches, codec, metrics, schema
from watchkeeper.bus import Bus, BusError, Message, Names
from watchkeeper.deadletter import send_deadletter
from watchkeeper.store import Store, StoreError
from watchkeeper.store.base import RawRejected
from watchkeeper.store import raw as raw_docs
from watchkeeper.worker import StepResult

IN_FLIGHT = 2
log = logging.getLogger(__name__)


@dataclass
class _Batch:
    raw: dict[str, dict[str, raw_docs.RawDoc]] = field(default_factory=dict)  # kind -> id -> doc
    docs: dict[str, dict[str, dict]] = field(default_factory=dict)             # kind -> id -> doc
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)          # next to read
    events: int = 0         # documents in the messages (a message may be a batch)
    bad: int = 0            # dead-lettered while sorting
    late_bad: int = 0       # dead-lettered by the writer (refused by the store, then invalid)


class Indexer:
    name = "index"

    def __init__(self, bus: Bus, store: Store, names: Names = Names(), retry_s: float = 1.0,
                 trusted: tuple[str, ...] | None = None, in_flight: int = IN_FLIGHT):
        self.store = store
        self.names = names
        self.kind_by_topic = {names.events: "events", names.alerts: "alerts",
                              names.deadletter: "deadletter"}
        self.trusted = frozenset((names.events, names.alerts) if trusted is None else trusted)
        self.consumer = bus.consumer(names.group(self.name), list(self.kind_by_topic))
        self.producer = bus.producer()
        self.retry_s = retry_s
        self.in_flight = max(1, in_flight)
        self._writer = ThreadPoolExecutor(self.in_flight, thread_name_prefix="index-write")
        self._pending: deque[tuple[Future, _Batch]] = deque()
        self._poll_size = batches.PollSize(5000)

    def step(self, max_records: int = 5000, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(self._poll_size.records(max_records), timeout)
        done = StepResult()
        if not messages:
            return self._finish(0, done)    # idle: everything stored and committed
        batch = self._sort(messages)
        self._poll_size.saw(len(messages), batch.events)
        if batch.docs:
            self._finish(0, done)           # alerts may update each other: never overlap them
        self._finish(self.in_flight - 1, done)
        self._pending.append((self._writer.submit(self._write_until_stored, batch), batch))
        while self._pending and self._pending[0][0].done():
            self._commit_oldest(done)
        return done.add(StepResult(consumed=len(messages), deadlettered=batch.bad))

    def _sort(self, messages: list[Message]) -> _Batch:
        """Group documents by kind (last write of an id wins); dead-letter what is bad."""
        batch = _Batch()
        for msg in messages:
            batch.offsets[(msg.topic, msg.partition)] = msg.offset + 1
            kind = self.kind_by_topic[msg.topic]
            checked = msg.topic not in self.trusted or msg.topic == self.names.deadletter
            values = batches.split(msg.value)
            batch.events += len(values)
            for value in values:
                try:
                    if checked:
                        doc = schema.validate(codec.decode(value))
                        batch.docs.setdefault(kind, {})[doc["event"]["id"]] = doc
                    elif kind in raw_docs.RAW_KINDS:
                        doc = raw_docs.head(value)
                        batch.raw.setdefault(kind, {})[doc.id] = doc
                    else:
                        doc = codec.decode(value)
                        batch.docs.setdefault(kind, {})[doc["event"]["id"]] = doc
                except (codec.DecodeError, schema.ValidationError, *raw_docs.HeadError,
                        TypeError, KeyError) as exc:
                    self._reject(batch, msg, value, exc)
        return batch

    def _reject(self, batch: _Batch, msg: Message, value: bytes, exc: Exception) -> None:
        batch.bad += 1
        if msg.topic != self.names.deadletter:   # never loop a broken dead letter
            send_deadletter(self.producer, self.names, self.name, f"{type(exc).__name__}: {exc}",
                            value, msg.topic, f"{msg.topic}:{msg.partition}:{msg.offset}")

    def _write(self, batch: _Batch) -> int:
        written = 0
        for kind, docs in batch.raw.items():
            try:
                written += self.store.put_raw(kind, list(docs.values()))
            except RawRejected as refused:   # e.g. a mapping conflict: never a poison pill
                written += len(docs) - len(refused.ids)
                written += self._recheck(kind, [docs[i] for i in refused.ids if i in docs], batch)
        return written + sum(self.store.bulk_upsert(kind, list(docs.values()))
                             for kind, docs in batch.docs.items() if docs)

    def _recheck(self, kind: str, refused: list[raw_docs.RawDoc], batch: _Batch) -> int:
        """Documents the store refused on the byte path: validated as untrusted input would
        be; the invalid ones are dead-lettered, the valid ones written the ordinary way."""
        valid = []
        for doc in refused:
            try:
                valid.append(schema.validate(codec.decode(doc.raw)))
            except (codec.DecodeError, schema.ValidationError) as exc:
                batch.late_bad += 1
                topic = next(t for t, k in self.kind_by_topic.items() if k == kind)
                send_deadletter(self.producer, self.names, self.name,
                                f"{type(exc).__name__}: {exc}", doc.raw, topic, doc.id)
        return self.store.bulk_upsert(kind, valid) if valid else 0

    def _write_until_stored(self, batch: _Batch) -> int:
        """Retry the same batch: committing past unwritten documents would lose them."""
        attempt = 0
        while True:
            try:
                return self._write(batch)
            except StoreError:
                attempt += 1
                if attempt >= 5:
                    raise   # the caller's loop backs off; offsets stay uncommitted
                time.sleep(self.retry_s * attempt)

    def _finish(self, keep: int, done: StepResult) -> StepResult:
        """Wait for the oldest writes until at most `keep` are in flight; commit each."""
        while len(self._pending) > keep:
            self._commit_oldest(done)
        return done

    def _commit_oldest(self, done: StepResult) -> None:
        future, batch = self._pending[0]
        written = future.result()      # StoreError: the loop resets; nothing is committed
        self._pending.popleft()
        self.producer.flush()     # dead letters are stored before their offsets are committed
        self.consumer.commit(batch.offsets)
        metrics.RECORDS.labels(stage=self.name, outcome="written").inc(written)
        done.add(StepResult(written=written, deadlettered=batch.late_bad))

    def _abandon(self) -> None:
        """Let running writes end, commit nothing of them: they will be read again."""
        pending, self._pending = list(self._pending), deque()
        for future, _ in pending:
            try:
                future.result()
            except Exception:   # noqa: BLE001 - already failed; the rewind reads it again
                pass

    def reset(self) -> None:
        self._abandon()
        self.consumer.rewind()

    def close(self) -> None:
        try:
            self._finish(0, StepResult())
        except (StoreError, BusError) as exc:   # uncommitted: the next indexer reads it again
            log.warning("index: writes in flight at close not stored: %s", exc)
        finally:
            self._abandon()
            self._writer.shutdown(wait=True)
            self.producer.close()
            self.consumer.close()

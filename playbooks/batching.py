"""Group commit for the playbook worker's store writes.

Many runs advance at once, each in its own thread, each still doing its writes one after
another exactly as before (claim, action, record, audit): a run never goes on before its
write is durable, so the rules that make restarts safe are unchanged. What changes is the
round trip: writes of the same shape that threads issue while one batch is in flight wait
for it, then go together as the next batch (one bulk of claims, one bulk of saves, one
chained append of audit records). With one thread this is the plain store.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from watchkeeper.store.base import Store

MAX_BATCH = 1000


@dataclass
class _Slot:
    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class GroupCommit:
    """Callers hand in one item each and get back its own result; while a batch is being
    written the items arriving wait and are written together next (the first waiting
    caller writes them)."""
    write: Callable[[list], list]
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _pending: list[_Slot] = field(default_factory=list)
    _busy: bool = False

    def submit(self, item: Any) -> Any:
        slot = _Slot(item)
        with self._cond:
            self._pending.append(slot)
            while True:
                while not slot.done and self._busy:
                    self._cond.wait()
                if slot.done:
                    return self._outcome(slot)
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                self._busy = True
                self._cond.release()        # write without holding the queue
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()

    def _write(self, batch: list[_Slot]) -> None:
        try:
            results = self.write([s.item for s in batch])
            for s, result in zip(batch, results, strict=True):
                s.result = result
        except BaseException as exc:          # every caller in the batch sees the failure
            for s in batch:
                s.error = exc
        for s in batch:
            s.done = True

    @staticmethod
    def _outcome(slot: _Slot) -> Any:
        if slot.error is not None:
            raise slot.error
        return slot.result


class BatchingStore:
    """The store as the engine and its actions see it: inserts, upserts and audit appends
    go through group commits; everything else is the wrapped store's own."""

    def __init__(self, store: Store):
        self.store = store
        self._inserts: dict[str, GroupCommit] = {}
        self._upserts: dict[str, GroupCommit] = {}
        self._guard = threading.Lock()
        self._audit = GroupCommit(store.append_audits)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def _group(self, groups: dict[str, GroupCommit], kind: str,
               write: Callable[[list], list]) -> GroupCommit:
        with self._guard:
            if kind not in groups:
                groups[kind] = GroupCommit(write)
            return groups[kind]

    def insert_new(self, kind: str, doc: dict) -> bool:
        group = self._group(self._inserts, kind,
                            lambda docs: self.store.insert_new_many(kind, docs))
        return group.submit(doc)

    def bulk_upsert(self, kind: str, docs: list[dict]) -> int:
        if kind not in ("runs",):       # alerts and incidents merge with what is stored
            return self.store.bulk_upsert(kind, docs)
        group = self._group(self._upserts, kind, self._upsert_batch(kind))
        for doc in docs:
            group.submit(doc)
        return len(docs)

    def _upsert_batch(self, kind: str) -> Callable[[list], list]:
        def write(docs: list[dict]) -> list:
            latest = {d["event"]["id"]: d for d in docs}     # the last save of a doc wins
            self.store.bulk_upsert(kind, list(latest.values()))
            return [None] * len(docs)
        return write

    def append_audit(self, record: dict) -> dict:
        return self._audit.submit(record)

    def append_audits(self, records: list[dict]) -> list[dict]:
        return self.store.append_audits(records)

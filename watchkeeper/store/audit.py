"""The audit trail: append-only, each record chained to the previous one by a SHA-256 hash.

Record n holds `watchkeeper.audit.seq = n`, `prev_hash` = record n-1's hash and its own `hash`
over everything else in it (canonical JSON). Editing a record breaks its hash; deleting one
breaks the next record's `prev_hash` and the sequence. Records are inserted, never replaced
(`Store.insert_new`): two writers racing for the same sequence number make one of them retry
on the new tail, so the chain never forks, whichever process (API, CLI) writes.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from watchkeeper import schema, timeutil

GENESIS = "0" * 64
_RETRIES = 20


def record_hash(record: dict) -> str:
    """SHA-256 of the record without its own `hash`, as canonical JSON."""
    body = json.loads(json.dumps(record))
    body.get("watchkeeper", {}).get("audit", {}).pop("hash", None)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def audit_record(action: str, actor: str, *, outcome: str = "success", message: str = "",
                 object_kind: str | None = None, object_id: str | None = None,
                 changes: dict | None = None, source_ip: str | None = None) -> dict:
    """An audit record before chaining: who did what to which object, with what outcome."""
    audit = {"outcome": outcome}
    if object_kind:
        audit["object_kind"] = object_kind
    if object_id:
        audit["object_id"] = object_id
    if changes:
        audit["changes"] = changes
    record = {"event": {"kind": "event", "dataset": "watchkeeper.audit", "action": action,
                        "outcome": outcome},
              "user": {"name": actor}, "message": message,
              "watchkeeper": {"audit": audit}}
    if source_ip and _is_ip(source_ip):    # a test client or a unix socket has no address
        record["source"] = {"ip": source_ip}
    return record


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _seq_id(seq: int) -> str:
    return f"audit-{seq:012d}"   # sorts like the sequence: reads in id order = chain order


class AuditChain:
    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._tail: dict | None = None     # the record this chain appended last

    def append(self, record: dict) -> dict:
        """Chain `record` after the current tail and insert it; returns the stored record.
        The tail is first assumed to be our own last record (no search, no lease per
        append); if another writer appended since, its number is taken, the insert fails,
        and the real tail is read from the store under the lease: a tail read while a batch
        (`append_many`) is half written must never be chained on."""
        from watchkeeper.store.base import Query, StoreError
        with self._lock:
            if self._tail is not None:
                chained = self._chain(record, self._tail)
                if self.store.insert_new("audit", chained):
                    self._tail = chained
                    return chained
                self._tail = None
            with self._lease():
                self.store.refresh("audit")   # another writer took this number: re-read
                for _ in range(_RETRIES):
                    found = self.store.search("audit", Query(limit=1)).items
                    chained = self._chain(record, found[0] if found else None)
                    if self.store.insert_new("audit", chained):
                        self._tail = chained
                        return chained
                    self.store.refresh("audit")
        raise StoreError("audit trail: could not append after repeated conflicts")

    def _lease(self):
        lease = getattr(self.store, "audit_lease", None)
        return lease() if lease else contextlib.nullcontext()

    def append_many(self, records: list[dict]) -> list[dict]:
        """Chain `records` in order after the tail and insert them with as few round trips
        as the store allows (`insert_new_many(ordered=True)`: it stops at the first number
        another writer took, so the chain never gets a record after a gap); the rest are
        chained again on the real tail. Returns the stored records, in order."""
        from watchkeeper.store.base import Query, StoreError
        stored: list[dict] = []
        if not records:
            return stored
        with self._lock, self._lease():
            left, tail = list(records), self._tail
            for _ in range(_RETRIES):
                if not left:
                    return stored
                if tail is None:
                    found = self.store.search("audit", Query(limit=1)).items
                    tail = found[0] if found else {}
                chained = []
                for record in left:
                    chained.append(self._chain(record, chained[-1] if chained else tail or None))
                done = sum(self.store.insert_new_many("audit", chained, ordered=True))
                stored += chained[:done]
                left = left[done:]
                if done:
                    self._tail = tail = chained[done - 1]
                if left:
                    self.store.refresh("audit")   # another writer took a number: re-read
                    tail = self._tail = None
            if not left:
                return stored
        raise StoreError("audit trail: could not append after repeated conflicts")

    @staticmethod
    def _chain(record: dict, tail: dict | None) -> dict:
        info = (tail or {}).get("watchkeeper", {}).get("audit", {})
        seq = int(info.get("seq", 0)) + 1
        last = timeutil.parse(tail["@timestamp"]) if tail else 0.0
        # Times never go backwards along the chain, so time order is chain order.
        now = max(time.time(), last + 0.001)
        doc = json.loads(json.dumps(record))
        doc["@timestamp"] = timeutil.format(now)
        doc.setdefault("event", {})["id"] = _seq_id(seq)
        doc["event"].setdefault("dataset", "watchkeeper.audit")
        audit = doc.setdefault("watchkeeper", {}).setdefault("audit", {})
        audit.update(seq=seq, prev_hash=info.get("hash", GENESIS))
        audit["hash"] = record_hash(doc)
        return doc


@dataclass
class Verdict:
    checked: int
    broken_seq: int | None = None      # first record that does not fit the chain
    broken_id: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None and not self.reason


def iter_audit(store, page: int = 1000, since: float | None = None,
               until: float | None = None) -> Iterator[dict]:
    """Every audit record in chain order."""
    from watchkeeper.store.base import Query
    cursor = None
    while True:
        result = store.search("audit", Query(since=since, until=until, limit=page,
                                             cursor=cursor, order="asc"))
        yield from result.items
        cursor = result.next_cursor
        if cursor is None:
            return


def verify(store) -> Verdict:
    """Walk the chain from the first record; stop at the first link that does not hold."""
    store.refresh("audit")
    previous, checked = GENESIS, 0
    for record in iter_audit(store):
        audit = record.get("watchkeeper", {}).get("audit", {})
        seq = audit.get("seq")
        rid = schema.get(record, "event.id")
        if seq != checked + 1:
            return Verdict(checked, checked + 1, rid,
                           f"expected record {checked + 1}, found {seq!r}: a record was deleted "
                           "or inserted")
        if audit.get("prev_hash") != previous:
            return Verdict(checked, seq, rid, "prev_hash does not match the previous record: "
                                              "the previous record was changed or removed")
        if audit.get("hash") != record_hash(record):
            return Verdict(checked, seq, rid, "hash does not match the record: it was edited")
        previous, checked = audit["hash"], checked + 1
    return Verdict(checked)

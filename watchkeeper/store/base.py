"""Store contract shared by SQLite and Elasticsearch (checked by tests/contract/test_store.py).

Documents are ECS dicts keyed by `event.id`. Writes are idempotent upserts; reads are filtered,
sorted by (@timestamp, event.id) and paged with an opaque cursor, so a page boundary never
skips or repeats a document even when many share a timestamp.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import urlparse

from watchkeeper.store import raw as raw_docs
# The contract's parts live in their own modules; importing them from here keeps working.
from watchkeeper.store.alert_docs import (  # noqa: F401
    ANALYST_FIELDS, STAMPED_KINDS, UPDATABLE_ALERT_FIELDS, AlertConflict, Modified,
    apply_alert_changes, audit_document, check_alert_changes, merge_alert, stamp_ingested)
from watchkeeper.store.cursors import (  # noqa: F401
    cursor_position, decode_cursor, decode_sort_cursor, encode_cursor, page_cursor, sort_key)
from watchkeeper.store.query import (  # noqa: F401
    ARRAY_FIELDS, CHANGE_FIELDS, MAX_GROUPS, MISSING_SORT_VALUE, SORT_FIELDS, TERM_FIELDS,
    Bucket, Group, Page, Query, TooManyGroups, check_change_field, check_group_fields,
    group_order)

KINDS = ("events", "alerts", "incidents", "audit", "deadletter", "state", "identity", "reports",
         "suppressions", "comments", "runs", "sites", "assets")
DELETABLE_KINDS = frozenset({"sites", "assets"})    # the inventory; never audit or events
SCAN_PAGE = 1000                    # page size of Store.scan

class StoreError(RuntimeError):
    pass


class RawRejected(StoreError):
    """`put_raw`: the store refused these documents for what they are (a mapping conflict),
    not for its own state; the others were written. Retrying would refuse them again."""

    def __init__(self, ids: list[str], first: object):
        super().__init__(f"{len(ids)} documents refused: {first}")
        self.ids = ids


class StoreUnavailable(StoreError):
    """The store cannot be reached; the message names the address and what to do."""


class Store(ABC):
    url: str

    @abstractmethod
    def ensure_schema(self) -> None: ...

    @abstractmethod
    def bulk_upsert(self, kind: str, docs: list[dict]) -> int:
        """Insert or replace by `event.id` (alerts keep ANALYST_FIELDS; incidents keep people's
        newer fields, watchkeeper.incidents.keep_newer_people_fields). Returns docs written."""

    @abstractmethod
    def search(self, kind: str, query: Query) -> Page: ...

    @abstractmethod
    def get_by_ids(self, kind: str, ids: list[str]) -> list[dict]: ...

    @abstractmethod
    def terms(self, kind: str, field_name: str, query: Query, size: int = 10) -> list[Bucket]: ...

    @abstractmethod
    def date_histogram(self, kind: str, interval_seconds: int, query: Query) -> list[Bucket]:
        """Counts per fixed interval; bucket key = interval start in epoch seconds; empty omitted."""

    @abstractmethod
    def group_counts(self, kind: str, fields: list[str], query: Query,
                     interval_seconds: int | None = None,
                     sum_field: str | None = None) -> list[Group]:
        """Counts per combination of `fields` values (and per fixed time interval when given):
        a composite aggregation, so the screen's sums run over groups, never over documents.
        With `sum_field` (numeric) each group also has its `total` and `summed` count.
        Ordered by (start, keys); at most MAX_GROUPS (more is a ValueError)."""

    def summarise(self, kind: str, query: Query, terms: dict[str, tuple[str, int]],
                  series: dict[str, tuple[str, int]]) -> dict[str, list]:
        """Several aggregations of the same documents: `terms` name -> (field, size) answered
        as `self.terms`, `series` name -> (field, interval seconds) as `self.group_counts`
        of that one field per interval. The same answers as asking each; a store may answer
        them all from one pass (Elasticsearch: one search)."""
        out: dict[str, list] = {name: self.terms(kind, field_name, query, size)
                                for name, (field_name, size) in terms.items()}
        out.update({name: self.group_counts(kind, [field_name], query, interval)
                    for name, (field_name, interval) in series.items()})
        return out

    @abstractmethod
    def changes_after(self, kind: str, time_field: str, after: tuple[str, str] | None,
                      until: float, query: Query) -> list[dict]:
        """Documents whose `time_field` (CHANGE_FIELDS) is after `after` = (time, event.id)
        (ties broken by id) and before `until`, oldest first, at most `query.limit`; the
        query's terms and sites filter, its since/until/cursor/order are ignored. Times are
        compared at millisecond precision on both backends."""

    @abstractmethod
    def delete_ids(self, kind: str, ids: list[str]) -> int:
        """Remove documents by id (DELETABLE_KINDS only); returns how many existed."""

    @abstractmethod
    def modify_alert(self, alert_id: str, decide: Callable[[dict], dict]) -> tuple[dict, dict]:
        """Atomically change analyst fields of one alert: `decide(current alert)` returns the
        changes ({} = none; may raise to refuse) and is called on the latest stored version
        (again, if another writer got there first). Returns (before, after); KeyError if there
        is no such alert. Not audited and not refreshed: the caller does both."""

    def modify_alerts(self, alert_ids: list[str], decide: Callable[[dict], dict]
                      ) -> list[Modified]:
        """modify_alert on each id (backends may batch it): one Modified per id, in order;
        a missing alert or a refusal (KeyError, AlertConflict from `decide`) is its `error`."""
        results = []
        for alert_id in alert_ids:
            try:
                before, after = self.modify_alert(alert_id, decide)
            except (KeyError, AlertConflict) as exc:
                results.append(Modified(alert_id, error=exc))
            else:
                results.append(Modified(alert_id, before, after))
        return results

    def update_alert(self, alert_id: str, changes: dict, actor: str, comment: str = "") -> dict:
        """Change analyst fields of one alert as given (no workflow: triage.py has that) and
        write an audit record; returns the alert."""
        check_alert_changes(changes)
        before, after = self.modify_alert(alert_id, lambda _: changes)
        old = before["watchkeeper"]["alert"]
        self.append_audit(audit_document(alert_id, {k: old.get(k) for k in changes}, changes,
                                         actor, comment, time.time()))
        self.refresh("alerts")
        return after

    def update_alerts(self, alert_ids: list[str], changes: dict, actor: str,
                      comment: str = "") -> int:
        """`update_alert` on many alerts (each change audited); how many existed. Backends
        whose single update waits for a refresh batch the writes."""
        changed = 0
        for alert_id in dict.fromkeys(alert_ids):
            try:
                self.update_alert(alert_id, changes, actor=actor, comment=comment)
            except KeyError:
                continue
            changed += 1
        return changed

    @abstractmethod
    def modify(self, kind: str, doc_id: str, change: Callable[[dict], dict]) -> dict:
        """Write `change(stored)` with no other write to the document in between (a conflict
        re-reads and re-applies, so `change` must be repeatable); KeyError if absent. The
        write is visible to reads when this returns. Not for events (daily indices)."""

    @abstractmethod
    def delete_events_before(self, day: str) -> list[str]:
        """Drop whole days of events older than `day` ('YYYY.MM.DD'); returns the days dropped."""

    def scan(self, kind: str, query: Query, limit: int | None = None) -> Iterator[dict]:
        """Every document `query` matches (at most `limit`), in its order, page after page:
        the one paging loop (its own cursor and page size; `query` is not changed)."""
        cursor, left = None, float("inf") if limit is None else max(limit, 0)
        while left > 0:
            page = self.search(kind, replace(query, limit=int(min(left, SCAN_PAGE)),
                                             cursor=cursor))
            yield from page.items
            left -= len(page.items)
            cursor = page.next_cursor
            if cursor is None or not page.items:
                return

    @abstractmethod
    def insert_new(self, kind: str, doc: dict) -> bool:
        """Insert unless a document with this `event.id` exists (append-only kinds: audit);
        False if it exists. The write is visible to reads when this returns."""

    def insert_new_many(self, kind: str, docs: list[dict], ordered: bool = False) -> list[bool]:
        """`insert_new` for many documents in one go (a backend overrides it to save round
        trips); one flag per document, True = inserted now. `ordered` (a hash chain's next
        records, written under `audit_lease`): if the first exists, none is inserted, so the
        chain never gets a record after a gap. Every insert is visible to reads when this
        returns."""
        inserted: list[bool] = []
        for doc in docs:
            if ordered and inserted and not inserted[-1]:
                inserted.append(False)
                continue
            inserted.append(self.insert_new(kind, doc))
        return inserted

    def audit_lease(self) -> AbstractContextManager:
        """Held while appending to the audit chain. Inserts one after another need none
        (SQLite); a backend that writes a batch in one request (Elasticsearch) holds a
        lease across processes, so nobody takes a number in the middle of the batch."""
        return nullcontext()

    def append_audit(self, record: dict) -> dict:
        """Append to the hash-chained audit trail (watchkeeper/store/audit.py)."""
        from watchkeeper.store.audit import AuditChain
        chain = self.__dict__.setdefault("_audit_chain", AuditChain(self))
        return chain.append(record)

    def append_audits(self, records: list[dict]) -> list[dict]:
        """Append several records to the audit trail in order, in as few writes as the
        backend allows (AuditChain.append_many)."""
        from watchkeeper.store.audit import AuditChain
        chain = self.__dict__.setdefault("_audit_chain", AuditChain(self))
        return chain.append_many(records)

    def put_raw(self, kind: str, docs: list[raw_docs.RawDoc]) -> int:
        """Insert or replace documents already validated and encoded by their producer, as
        those bytes (events, dead letters: kinds the store does not change on the way in).
        This default decodes them; the backends write the bytes."""
        raw_docs.check_raw_kind(kind)
        return self.bulk_upsert(kind, raw_docs.decoded(docs))

    def refresh(self, kind: str | None = None) -> None:
        """Make every write so far (to `kind`, or to all kinds) visible to reads."""

    def close(self) -> None:
        pass


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; one of {KINDS}")


def check_deletable(kind: str) -> None:
    if kind not in DELETABLE_KINDS:
        raise ValueError(f"{kind!r} documents cannot be deleted")


def open_store(url: str) -> Store:
    """`sqlite:///PATH` (embedded) or `http(s)://HOST:9200[?prefix=NAME]` (Elasticsearch)."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from watchkeeper.store.sqlite import SqliteStore
        return SqliteStore(url)
    if scheme in ("http", "https"):
        from watchkeeper.store.elastic import ElasticStore
        return ElasticStore.from_url(url)
    raise ValueError(f"store URL {url!r}: use sqlite:///PATH or http://HOST:9200")

"""Store contract shared by SQLite and Elasticsearch (checked by tests/contract/test_store.py).

Documents are ECS dicts keyed by `event.id`. Writes are idempotent upserts; reads are filtered,
sorted by (@timestamp, event.id) and paged with an opaque cursor, so a page boundary never
skips or repeats a document even when many share a timestamp.
"""
from __future__ import annotations

import base64
import json
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import urlparse

from watchkeeper import timeutil

KINDS = ("events", "alerts", "incidents", "audit", "deadletter", "state", "identity", "reports",
         "suppressions", "comments", "runs", "sites", "assets")
DELETABLE_KINDS = frozenset({"sites", "assets"})    # the inventory; never audit or events
SCAN_PAGE = 1000                    # page size of Store.scan

# Fields an analyst owns on an alert: a detector re-raising the same alert never resets them
# (the triage fields are documented in watchkeeper/store/triage.py).
ANALYST_FIELDS = ("status", "assignee", "incident_id", "verdict", "tags", "acknowledged_at",
                  "closed_at", "updated_at", "suppressed_by", "reopened")
UPDATABLE_ALERT_FIELDS = frozenset(ANALYST_FIELDS)

# Fields that can be filtered exactly and aggregated (keyword, ip or numeric in both backends).
TERM_FIELDS = frozenset({
    "event.dataset", "event.kind", "event.severity", "event.module", "event.outcome",
    "event.action",
    "watchkeeper.alert.category", "watchkeeper.alert.status", "watchkeeper.alert.detector",
    "watchkeeper.alert.assignee", "watchkeeper.alert.incident_id", "watchkeeper.alert.entity",
    "watchkeeper.alert.verdict", "watchkeeper.alert.tags", "watchkeeper.alert.suppressed_by",
    "watchkeeper.comment.object_id", "watchkeeper.comment.object_kind",
    "watchkeeper.audit.object_id", "watchkeeper.audit.object_kind",
    "watchkeeper.flow.conn_state", "rule.id", "source.ip", "destination.ip", "destination.port",
    "related.ip", "network.transport", "network.protocol", "network.direction",
    "labels.site", "observer.name", "user.name", "dns.question.name",
    "watchkeeper.incident.status", "watchkeeper.incident.entity",
    "watchkeeper.incident.categories", "watchkeeper.incident.level",
    # asset context (detectors' AlertContext) and collector status documents: posture
    "watchkeeper.asset.source.criticality", "watchkeeper.asset.source.mlps_level",
    "watchkeeper.asset.destination.criticality", "watchkeeper.asset.destination.mlps_level",
    "watchkeeper.collector.name", "watchkeeper.deadletter.stage",
    "watchkeeper.incident.level_suggested", "watchkeeper.incident.escalated_to",
    "watchkeeper.incident.assignee", "watchkeeper.audit.object_id",
    "watchkeeper.report.type", "watchkeeper.report.period", "watchkeeper.report.schedule",
    "watchkeeper.run.playbook", "watchkeeper.run.status", "watchkeeper.run.run_id",
    "watchkeeper.run.target", "watchkeeper.run.trigger.object_id",
    "watchkeeper.run.incident_id",
})

_EARLIEST, _LATEST = 0.0, 253402300799.0   # 1970-01-01 .. 9999-12-31T23:59:59Z
# (audit object_id: one id, or a bulk change's list of ids)
ARRAY_FIELDS = frozenset({"related.ip", "watchkeeper.incident.categories",
                          "watchkeeper.alert.tags", "watchkeeper.audit.object_id"})
# Orders a search can page in besides time: numeric fields, ties broken by time then id.
SORT_FIELDS = ("event.severity", "event.risk_score")
MISSING_SORT_VALUE = -1       # a document without the sort field sorts below every real value


class StoreError(RuntimeError):
    pass


class StoreUnavailable(StoreError):
    """The store cannot be reached; the message names the address and what to do."""


@dataclass
class Query:
    since: float | None = None          # epoch seconds, inclusive
    until: float | None = None          # exclusive
    terms: dict[str, list] = field(default_factory=dict)   # TERM_FIELDS -> accepted values
    ip: str | None = None               # any address involved (related.ip)
    q: str | None = None                # substring of `message`
    limit: int = 100
    cursor: str | None = None
    order: Literal["desc", "asc"] = "desc"
    sort: str | None = None             # None = time; or one of SORT_FIELDS (then time, id)
    # Tenancy (watchkeeper/store/scoped.py sets it, nothing else should): None = every
    # document; a list = only documents whose labels.site is in it (site-less ones excluded).
    sites: list[str] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.terms) - TERM_FIELDS
        if unknown:
            raise ValueError(f"cannot filter on {sorted(unknown)}; filterable: {sorted(TERM_FIELDS)}")
        if self.sort is not None and self.sort not in SORT_FIELDS:
            raise ValueError(f"cannot sort on {self.sort!r}; sortable: time, {SORT_FIELDS}")
        if not 1 <= self.limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and not _EARLIEST <= value <= _LATEST:
                raise ValueError(f"{name} must be between 1970 and 9999")


@dataclass
class Page:
    items: list[dict]
    total: int
    next_cursor: str | None


@dataclass
class Bucket:
    key: str | int | float
    count: int


@dataclass
class Group:
    """One combination of `group_counts` fields (None: the field is missing) and its count;
    `start` is the interval start (epoch seconds) when an interval was asked for."""
    keys: tuple
    count: int
    start: int | None = None


class TooManyGroups(ValueError):
    """group_counts would return more than MAX_GROUPS combinations."""


MAX_GROUPS = 200_000    # group_counts refuses to return more combinations than this


# Times the live feed follows (ascending, with a (time, id) cursor): the indexer's stamp on
# every stored alert and incident, and the analysts' last change (triage, incidents owners).
CHANGE_FIELDS = frozenset({"event.ingested", "watchkeeper.alert.updated_at",
                           "watchkeeper.incident.updated_at"})


def check_change_field(time_field: str) -> None:
    if time_field not in CHANGE_FIELDS:
        raise ValueError(f"cannot follow {time_field!r}; one of {sorted(CHANGE_FIELDS)}")


def group_order(group: Group) -> tuple:
    """(start, keys) with missing values first: both backends return groups in this order."""
    return (group.start or 0, tuple((k is not None, k) for k in group.keys))


def check_group_fields(fields: list[str]) -> None:
    bad = [f for f in fields if f not in TERM_FIELDS or f in ARRAY_FIELDS]
    if bad or not fields:
        raise ValueError(f"cannot group by {bad}; groupable: scalar fields of "
                         f"{sorted(TERM_FIELDS)}")


def encode_cursor(timestamp: str, doc_id: str, key: float | None = None) -> str:
    """`key`: the sort field's value of the last document, when the search sorts on one."""
    parts = [timestamp, doc_id] if key is None else [timestamp, doc_id, key]
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def decode_sort_cursor(cursor: str) -> tuple[str, str, float | None]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        timestamp, doc_id, *rest = parts
        key = rest[0] if len(rest) == 1 else None
        if (isinstance(timestamp, str) and isinstance(doc_id, str) and len(rest) <= 1
                and (key is None or (isinstance(key, int | float) and not isinstance(key, bool)
                                     and abs(key) < 1e15))):
            timeutil.parse(timestamp)
            return timestamp, doc_id, key
    except (ValueError, TypeError, OverflowError):
        pass
    raise ValueError("cursor is not one this server issued")


def decode_cursor(cursor: str) -> tuple[str, str]:
    timestamp, doc_id, _ = decode_sort_cursor(cursor)
    return timestamp, doc_id


def sort_key(doc: dict, field_name: str) -> float:
    """The value a sorted search orders `doc` by (missing or non-numeric: MISSING_SORT_VALUE)."""
    value: object = doc
    for part in field_name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return value if ok else MISSING_SORT_VALUE


def page_cursor(query: Query, last: dict) -> str:
    key = sort_key(last, query.sort) if query.sort else None
    return encode_cursor(last["@timestamp"], last["event"]["id"], key)


def cursor_position(query: Query) -> tuple[str, str, float | None]:
    """The cursor of `query`, checked against its sort: a time cursor is no severity cursor."""
    timestamp, doc_id, key = decode_sort_cursor(query.cursor or "")
    if (key is None) != (query.sort is None):
        raise ValueError("cursor belongs to a search with another sort: start over without it")
    return timestamp, doc_id, key


@dataclass
class Modified:
    """What Store.modify_alerts did to one alert: before/after (the same object when nothing
    changed), or the error that refused it."""
    alert_id: str
    before: dict | None = None
    after: dict | None = None
    error: Exception | None = None

    @property
    def changed(self) -> bool:
        return self.error is None and self.after is not self.before


class AlertConflict(ValueError):
    """A change that does not apply to the alert as it is now (e.g. an invalid transition)."""

    def __init__(self, message: str, allowed: list[str] | None = None):
        super().__init__(message)
        self.allowed = allowed or []


def merge_alert(stored: dict | None, incoming: dict) -> dict:
    """A re-raised alert keeps the analyst's status, assignee and incident link."""
    if not stored:
        return incoming
    kept = stored.get("watchkeeper", {}).get("alert", {})
    merged = json.loads(json.dumps(incoming))
    info = merged.setdefault("watchkeeper", {}).setdefault("alert", {})
    for name in ANALYST_FIELDS:    # all from the stored alert, as Elasticsearch's partial update
        if name in kept:
            info[name] = kept[name]
        else:
            info.pop(name, None)
    return merged


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
                     interval_seconds: int | None = None) -> list[Group]:
        """Counts per combination of `fields` values (and per fixed time interval when given):
        a composite aggregation, so the screen's sums run over groups, never over documents.
        Ordered by (start, keys); at most MAX_GROUPS (more is a ValueError)."""

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

    def refresh(self, kind: str | None = None) -> None:
        """Make every write so far (to `kind`, or to all kinds) visible to reads."""

    def close(self) -> None:
        pass


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}; one of {KINDS}")


STAMPED_KINDS = ("alerts", "incidents")


def stamp_ingested(kind: str, docs: list[dict], now: float | None = None) -> list[dict]:
    """`event.ingested` = when the store took the document (ECS), on alerts and incidents
    whoever writes them (indexer, correlator): the live feed's cursor for new documents."""
    if kind not in STAMPED_KINDS:
        return docs
    stamp = timeutil.format(time.time() if now is None else now)
    return [{**doc, "event": {**doc["event"], "ingested": stamp}} for doc in docs]


def check_deletable(kind: str) -> None:
    if kind not in DELETABLE_KINDS:
        raise ValueError(f"{kind!r} documents cannot be deleted")


def apply_alert_changes(alert: dict, changes: dict) -> dict:
    """A copy of `alert` with `changes` set on watchkeeper.alert (None values stored as null)."""
    after = json.loads(json.dumps(alert))
    after.setdefault("watchkeeper", {}).setdefault("alert", {}).update(changes)
    return after


def check_alert_changes(changes: dict) -> None:
    unknown = set(changes) - UPDATABLE_ALERT_FIELDS
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}; changeable: {sorted(UPDATABLE_ALERT_FIELDS)}")


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


def audit_document(object_id: str, before: dict, after: dict, actor: str, comment: str,
                   now: float) -> dict:
    """Who changed what on an alert, when and why (MLPS 8.1.5.2: audited actions)."""
    from watchkeeper import schema
    changes = {k: {"from": before.get(k), "to": after.get(k)} for k in after
               if before.get(k) != after.get(k)}
    return {
        "@timestamp": timeutil.format(now),
        "event": {"id": schema.stable_id("audit", object_id, now, actor), "kind": "event",
                  "dataset": "watchkeeper.audit", "action": "alert.update",
                  "category": ["configuration"], "type": ["change"]},
        "user": {"name": actor},
        "message": comment,
        "watchkeeper": {"audit": {"object_id": object_id, "object_kind": "alert",
                                  "changes": changes}},
    }

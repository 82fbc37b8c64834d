"""Embedded store: SQLite in WAL mode, one table per document kind, JSON documents."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import msgspec

from watchkeeper import timeutil
from watchkeeper.incidents import keep_newer_people_fields
from watchkeeper.store.base import (ARRAY_FIELDS, CHANGE_FIELDS, KINDS, MAX_GROUPS,
                                    MISSING_SORT_VALUE, Bucket, Group, Page, Query, Store,
                                    StoreError, StoreUnavailable, TooManyGroups,
                                    apply_alert_changes, audit_document, check_alert_changes,
                                    check_change_field, check_deletable, check_group_fields,
                                    check_kind, cursor_position, decode_cursor, encode_cursor,
                                    group_order, merge_alert, page_cursor, stamp_ingested)
from watchkeeper.store import raw as raw_docs
from watchkeeper.store.legacy import upgraded
from watchkeeper.store.raw import RawDoc
from watchkeeper.store.sqlite_readers import ReadConnections
from watchkeeper.store.sqlite_summary import fold, summary_sql

_INDEXED = ("event.dataset", "watchkeeper.alert.category", "watchkeeper.alert.status",
            "event.severity", "source.ip")


def _path(field_name: str) -> str:
    return "$." + ".".join(f'"{p}"' if p.startswith("@") else p for p in field_name.split("."))


def _millis_sql(expr: str) -> str:
    """ISO-8601 (any zone) -> epoch milliseconds, in SQL: the same expression on both sides of
    a comparison, so rounding can never make a cursor skip or repeat a document."""
    return f"CAST(round((julianday({expr}) - 2440587.5) * 86400000) AS INTEGER)"


def sqlite_path(url: str) -> str:
    """SQLAlchemy's convention: sqlite:///relative/path, sqlite:////absolute/path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"store URL {url!r}: use sqlite:///relative or sqlite:////absolute")
    return url[len("sqlite:///"):] or ":memory:"


def _whole(value: float) -> float | int:
    """SQLite's total() is a float; whole sums as ints, like Elasticsearch's (see elastic)."""
    return int(value) if value.is_integer() else value


def _micros(timestamp: str) -> int:
    return round(timeutil.parse(timestamp) * 1_000_000)


class SqliteStore(Store):
    def __init__(self, url: str):
        self.url = url
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite store at {path}: {exc}") from None
        self._lock = threading.Lock()   # one write connection shared by API threads and the indexer
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._reads = ReadConnections(path, self._db, self._lock)   # reads never wait on it
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder().decode
        self.ensure_schema()

    def ensure_schema(self) -> None:
        with self._lock:
            for kind in KINDS:
                self._db.execute(f"CREATE TABLE IF NOT EXISTS {kind} (id TEXT PRIMARY KEY, "
                                 "ts INTEGER NOT NULL, day TEXT NOT NULL, doc TEXT NOT NULL)")
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_ts ON {kind}(ts, id)")
                self._db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_day ON {kind}(day)")
                if kind in ("alerts", "incidents"):       # the live feed's cursors
                    for name in sorted(CHANGE_FIELDS):
                        index = name.replace(".", "_").replace("@", "")
                        self._db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_{index} ON {kind}("
                                         f"{_millis_sql(f'json_extract(doc, {_path(name)!r})')}"
                                         ", id)")
                for i, name in enumerate(_INDEXED):
                    self._db.execute(f"CREATE INDEX IF NOT EXISTS {kind}_f{i} ON {kind}"
                                     f"(json_extract(doc, '{_path(name)}'))")

    # -- writes -------------------------------------------------------------------------------
    def bulk_upsert(self, kind: str, docs: list[dict]) -> int:
        check_kind(kind)
        if not docs:
            return 0
        docs = stamp_ingested(kind, docs)
        with self._lock:
            if kind == "alerts":
                docs = self._merge_stored_alerts(docs)
            elif kind == "incidents":
                stored = {d["event"]["id"]: d for d in self._fetch(kind, [d["event"]["id"]
                                                                          for d in docs])}
                docs = [keep_newer_people_fields(stored.get(d["event"]["id"]), d) for d in docs]
            rows = [self._row(doc) for doc in docs]
            return self._insert_rows(kind, rows)   # under the lock: merge + write atomic

    def _insert_rows(self, kind: str, rows: list[tuple]) -> int:
        """One transaction; the caller holds self._lock."""
        try:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(f"INSERT OR REPLACE INTO {kind} (id, ts, day, doc) "
                                     "VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:   # locked by another writer, disk full
            raise StoreError(f"write to {self.url} failed: {exc}") from None
        return len(rows)

    def put_raw(self, kind: str, docs: list[RawDoc]) -> int:
        raw_docs.check_raw_kind(kind)
        rows = [(d.id, _micros(d.timestamp), raw_docs.day_of(d.timestamp), d.raw.decode())
                for d in docs]
        if not rows:
            return 0
        with self._lock:
            return self._insert_rows(kind, rows)

    def _row(self, doc: dict) -> tuple:
        ts = doc["@timestamp"]
        return (doc["event"]["id"], _micros(ts), timeutil.day(timeutil.parse(ts)),
                self._encode(doc))

    def _merge_stored_alerts(self, docs: list[dict]) -> list[dict]:
        stored = {d["event"]["id"]: d for d in self._fetch("alerts", [d["event"]["id"] for d in docs])}
        return [merge_alert(stored.get(d["event"]["id"]), upgraded(d)) for d in docs]

    def modify_alert(self, alert_id: str, decide: Callable[[dict], dict]) -> tuple[dict, dict]:
        with self._lock:     # one connection, one lock: nobody writes between read and write
            found = self._fetch("alerts", [alert_id])
            if not found:
                raise KeyError(alert_id)
            before = found[0]
            changes = decide(before)
            if not changes:
                return before, before
            check_alert_changes(changes)
            after = apply_alert_changes(before, changes)
            self._db.execute("UPDATE alerts SET doc = ? WHERE id = ?",
                             (self._encode(after), alert_id))
        return before, after

    def modify(self, kind: str, doc_id: str, change: Callable[[dict], dict]) -> dict:
        check_kind(kind)
        with self._lock:              # one connection: the lock makes read + write atomic
            found = self._fetch(kind, [doc_id])
            if not found:
                raise KeyError(doc_id)
            doc = change(found[0])
            try:
                self._db.execute(f"INSERT OR REPLACE INTO {kind} (id, ts, day, doc) "
                                 "VALUES (?, ?, ?, ?)", self._row(doc))
            except sqlite3.OperationalError as exc:
                raise StoreError(f"write to {self.url} failed: {exc}") from None
        return doc

    def insert_new(self, kind: str, doc: dict) -> bool:
        check_kind(kind)
        with self._lock:
            try:
                self._db.execute(f"INSERT INTO {kind} (id, ts, day, doc) VALUES (?, ?, ?, ?)",
                                 self._row(doc))
            except sqlite3.IntegrityError:
                return False
        return True

    def delete_ids(self, kind: str, ids: list[str]) -> int:
        check_deletable(kind)
        with self._lock:
            found = len(self._fetch(kind, ids))
            self._db.executemany(f"DELETE FROM {kind} WHERE id = ?", [(i,) for i in ids])
        return found

    def delete_events_before(self, day: str) -> list[str]:
        with self._lock:
            days = [r[0] for r in self._db.execute(
                "SELECT DISTINCT day FROM events WHERE day < ? ORDER BY day", (day,))]
            self._db.execute("DELETE FROM events WHERE day < ?", (day,))
        return days

    # -- reads --------------------------------------------------------------------------------
    def search(self, kind: str, query: Query) -> Page:
        check_kind(kind)
        where, args = self._where(query)
        desc = query.order == "desc"
        page_where, page_args = list(where), list(args)
        key = self._sort_expression(query.sort)
        if query.cursor:
            ts, doc_id, value = cursor_position(query)
            op = "<" if desc else ">"
            position = f"(ts {op} ? OR (ts = ? AND id {op} ?))"
            position_args = [_micros(ts), _micros(ts), doc_id]
            if key:
                position = f"({key} {op} ? OR ({key} = ? AND {position}))"
                position_args = [value, value, *position_args]
            page_where.append(position)
            page_args += position_args
        direction = "DESC" if desc else "ASC"
        order = f"ts {direction}, id {direction}"
        if key:
            order = f"{key} {direction}, {order}"
        with self._reads.reading() as db:
            rows = db.execute(
                f"SELECT doc FROM {kind} {self._clause(page_where)} ORDER BY {order} LIMIT ?",
                (*page_args, query.limit + 1)).fetchall()
            total = db.execute(f"SELECT count(*) FROM {kind} {self._clause(where)}",
                                     args).fetchone()[0]
        items = [self._decode(r[0]) for r in rows[:query.limit]]
        more = len(rows) > query.limit
        cursor = page_cursor(query, items[-1]) if more else None
        return Page(items, total, cursor)

    @staticmethod
    def _sort_expression(field_name: str | None) -> str | None:
        """A numeric sort field, non-numbers and missing values as MISSING_SORT_VALUE."""
        if field_name is None:
            return None
        path = _path(field_name)
        return (f"(CASE WHEN json_type(doc, '{path}') IN ('integer', 'real') "
                f"THEN json_extract(doc, '{path}') ELSE {MISSING_SORT_VALUE} END)")

    def get_by_ids(self, kind: str, ids: list[str]) -> list[dict]:
        check_kind(kind)
        with self._reads.reading() as db:
            return self._fetch(kind, ids, db)

    def _fetch(self, kind: str, ids: list[str], db: sqlite3.Connection | None = None
               ) -> list[dict]:
        """Through the write connection (under its lock) unless a read connection is given."""
        found: dict[str, dict] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for doc_id, doc in (db or self._db).execute(
                    f"SELECT id, doc FROM {kind} WHERE id IN ({marks})", chunk):
                found[doc_id] = self._decode(doc)
        return [found[i] for i in dict.fromkeys(ids) if i in found]

    def terms(self, kind: str, field_name: str, query: Query, size: int = 10) -> list[Bucket]:
        check_kind(kind)
        Query(terms={field_name: []})  # validates the field name
        where, args = self._where(query)
        sql = (f"SELECT j.value, count(*) AS n FROM {kind}, json_each({kind}.doc, ?) AS j "
               f"{self._clause(where)} GROUP BY j.value ORDER BY n DESC, j.value LIMIT ?")
        with self._reads.reading() as db:
            rows = db.execute(sql, (_path(field_name), *args, size)).fetchall()
        return [Bucket(key, n) for key, n in rows if key is not None]

    def date_histogram(self, kind: str, interval_seconds: int, query: Query) -> list[Bucket]:
        check_kind(kind)
        width = int(interval_seconds) * 1_000_000
        where, args = self._where(query)
        sql = (f"SELECT (ts / ?) * ? AS k, count(*) FROM {kind} {self._clause(where)} "
               "GROUP BY k ORDER BY k")
        with self._reads.reading() as db:
            rows = db.execute(sql, (width, width, *args)).fetchall()
        return [Bucket(k // 1_000_000, n) for k, n in rows]

    def group_counts(self, kind: str, fields: list[str], query: Query,
                     interval_seconds: int | None = None,
                     sum_field: str | None = None) -> list[Group]:
        check_kind(kind)
        check_group_fields(fields, interval_seconds, sum_field)
        where, args = self._where(query)
        columns = [f"json_extract(doc, '{_path(name)}')" for name in fields]
        if interval_seconds:
            width = int(interval_seconds) * 1_000_000
            columns.insert(0, f"(ts / {width}) * {width}")
        names = ", ".join(columns)
        summed = f"json_extract(doc, '{_path(sum_field)}')" if sum_field else "NULL"
        sql = (f"SELECT {names}, count(*), total({summed}), count({summed}) FROM {kind} "
               f"{self._clause(where)} GROUP BY {names} ORDER BY {names} LIMIT ?")
        with self._reads.reading() as db:
            rows = db.execute(sql, (*args, MAX_GROUPS + 1)).fetchall()
        if len(rows) > MAX_GROUPS:
            raise TooManyGroups(f"more than {MAX_GROUPS} groups: narrow the query")
        first = 1 if interval_seconds else 0
        groups = [Group(tuple(r[first:-3]), r[-3], r[0] // 1_000_000 if first else None,
                        *((_whole(r[-2]), r[-1]) if sum_field else ())) for r in rows]
        return sorted(groups, key=group_order)

    def summarise(self, kind: str, query: Query, terms: dict[str, tuple[str, int]],
                  series: dict[str, tuple[str, int]]) -> dict[str, list]:
        """One scan for them all (sqlite_summary.py); base.Store.summarise has the contract."""
        check_kind(kind)
        for field_name, _size in terms.values():
            Query(terms={field_name: []})  # validates the field name
        for field_name, interval in series.values():
            check_group_fields([field_name], interval)
        if any(field_name in ARRAY_FIELDS for field_name, _size in terms.values()):
            return super().summarise(kind, query, terms, series)   # json_each per document
        fields = list(dict.fromkeys(f for f, _ in (*terms.values(), *series.values())))
        widths = sorted({int(interval) * 1_000_000 for _f, interval in series.values()})
        columns = ([f"(ts / {width}) * {width}" for width in widths]
                   + [f"json_extract(doc, '{_path(name)}')" for name in fields])
        if not columns:
            return {}
        where, args = self._where(query)
        with self._reads.reading() as db:
            rows = db.execute(summary_sql(kind, columns, self._clause(where)), args).fetchall()
        return fold(rows, fields, widths, terms, series)

    def changes_after(self, kind: str, time_field: str, after: tuple[str, str] | None,
                      until: float, query: Query) -> list[dict]:
        check_kind(kind)
        check_change_field(time_field)
        when = _millis_sql(f"json_extract(doc, '{_path(time_field)}')")
        where, args = self._where(replace(query, since=None, until=None))
        where.append(f"{when} < {_millis_sql('?')}")
        args.append(timeutil.format(until))
        if after:
            where.append(f"({when} > {_millis_sql('?')} OR ({when} = {_millis_sql('?')} "
                         "AND id > ?))")
            args += [after[0], after[0], after[1]]
        else:
            where.append(f"{when} IS NOT NULL")
        with self._reads.reading() as db:
            rows = db.execute(f"SELECT doc FROM {kind} {self._clause(where)} "
                                    f"ORDER BY {when}, id LIMIT ?", (*args, query.limit))
            return [self._decode(r[0]) for r in rows.fetchall()]

    def _where(self, query: Query) -> tuple[list[str], list]:
        where: list[str] = []
        args: list = []
        if query.since is not None:
            where.append("ts >= ?")
            args.append(round(query.since * 1_000_000))
        if query.until is not None:
            where.append("ts < ?")
            args.append(round(query.until * 1_000_000))
        if query.sites is not None:   # tenancy: see watchkeeper/store/scoped.py
            where.append(f"json_extract(doc, '$.labels.site') IN "
                         f"({','.join('?' * len(query.sites))})" if query.sites else "0")
            args.extend(query.sites)
        for name, values in query.terms.items():
            if not values:
                continue
            marks = ",".join("?" * len(values))
            if name in ARRAY_FIELDS:
                where.append(f"EXISTS (SELECT 1 FROM json_each(doc, '{_path(name)}') "
                             f"WHERE value IN ({marks}))")
            else:  # scalar: json_extract can use the expression indexes
                where.append(f"json_extract(doc, '{_path(name)}') IN ({marks})")
            args.extend(values)
        if query.ip:
            where.append("EXISTS (SELECT 1 FROM json_each(doc, '$.related.ip') WHERE value = ?)")
            args.append(query.ip)
        if query.q:
            where.append("(instr(lower(coalesce(json_extract(doc, '$.message'), '')), ?) > 0 OR "
                         "instr(lower(coalesce(json_extract(doc, '$.watchkeeper.alert.message_zh'),"
                         " '')), ?) > 0)")
            args += [query.q.lower()] * 2
        return where, args

    @staticmethod
    def _clause(where: list[str]) -> str:
        return ("WHERE " + " AND ".join(where)) if where else ""

    def close(self) -> None:
        self._reads.close()
        with self._lock:
            self._db.close()


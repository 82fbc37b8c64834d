"""Read connections of the SQLite store: one per thread, beside the single write connection.

In WAL mode readers do not wait for the writer nor for each other, so a cheap read (the
screen's `/auth/me`, an alert page) is not queued behind a slow one (the 24 h statistics) or
behind an indexer batch, which the single shared connection and its lock did (bench/web.py).
Each thread keeps its own connection (a sqlite3 connection is not safe to share between
threads mid-query); those of threads that ended are closed when a new one is opened.
An in-memory database is private to its connection: it keeps reading through the writer.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadConnections:
    def __init__(self, path: str, writer: sqlite3.Connection, writer_lock: threading.Lock):
        self._path = path
        self._writer, self._writer_lock = writer, writer_lock
        self._shared = path == ":memory:" or path.startswith("file::memory:")
        self._by_thread: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()       # guards _by_thread, never held during a query
        self._closed = False

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads in one snapshot: statements inside see the same data."""
        if self._shared:
            with self._writer_lock:
                yield self._writer
            return
        db = self._own()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")    # ends the read snapshot (nothing was written)

    def _own(self) -> sqlite3.Connection:
        me = threading.current_thread()
        with self._lock:
            db = self._by_thread.get(me)
            if db is not None:
                return db
            if self._closed:
                raise sqlite3.ProgrammingError("the store is closed")
            for thread in [t for t in self._by_thread if not t.is_alive()]:
                self._by_thread.pop(thread).close()
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA query_only=1")
            self._by_thread[me] = db
            return db

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for db in self._by_thread.values():
                db.close()
            self._by_thread.clear()

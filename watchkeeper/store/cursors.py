"""Opaque paging cursors: (time, id[, sort key]) of the last document of a page, so a page
boundary never skips or repeats a document even when many share a timestamp."""
from __future__ import annotations

import base64
import json

from watchkeeper import timeutil
from watchkeeper.store.query import MISSING_SORT_VALUE, Query

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

"""Documents stored as the bytes they arrived in: no decode, no re-encode.

The indexer's hot path. Events and dead letters from our own producers were validated and
encoded once, by the producer; the store needs only each document's id and time (to pick the
daily index and the row's sort key) and the bytes themselves. Kinds whose documents the store
changes on the way in (alerts: analyst fields kept; incidents: people's fields; stamped kinds:
`event.ingested`) never take this path.
"""
from __future__ import annotations

from typing import NamedTuple

import msgspec

from watchkeeper import timeutil

RAW_KINDS = ("events", "deadletter")


class RawDoc(NamedTuple):
    id: str
    timestamp: str        # @timestamp, ISO-8601 with a zone
    raw: bytes            # the whole document, JSON, as validated by its producer


class _EventHead(msgspec.Struct):
    id: str


class _Head(msgspec.Struct):
    """The two fields the store needs; msgspec skips the rest without building it."""
    event: _EventHead
    timestamp: str = msgspec.field(name="@timestamp")


_head_decoder = msgspec.json.Decoder(_Head)
HeadError = (msgspec.DecodeError, msgspec.ValidationError)


def head(raw: bytes) -> RawDoc:
    """(id, @timestamp, raw) of an encoded document; HeadError when either is missing."""
    found = _head_decoder.decode(raw)
    return RawDoc(found.event.id, found.timestamp, raw)


def day_of(timestamp: str) -> str:
    """'YYYY.MM.DD' (UTC) of an ISO time; the common '...Z' form without parsing."""
    if len(timestamp) > 10 and timestamp[10] == "T" and timestamp.endswith("Z"):
        return timestamp[:10].replace("-", ".")
    return timeutil.day(timeutil.parse(timestamp))


# Written as bytes too, by their own writer rather than from the bus: detector checkpoints
# (detectors/checkpoint.py), tens of MB of state encoded straight from the records.
WRITTEN_RAW_KINDS = (*RAW_KINDS, "state")


def check_raw_kind(kind: str) -> None:
    if kind not in WRITTEN_RAW_KINDS:
        raise ValueError(f"{kind!r} documents are changed on the way in; use bulk_upsert")


def decoded(docs: list[RawDoc]) -> list[dict]:
    """The documents as dicts: for stores without a byte path of their own."""
    decode = msgspec.json.decode
    return [decode(doc.raw) for doc in docs]


def bulk_body(docs: list[RawDoc], index_of) -> bytes:
    """An NDJSON `_bulk` body indexing each document's bytes by id into `index_of(doc)`."""
    encode = msgspec.json.encode
    parts: list[bytes] = []
    for doc in docs:
        parts.append(b'{"index":{"_index":%s,"_id":%s}}\n' % (encode(index_of(doc)),
                                                               encode(doc.id)))
        parts.append(doc.raw)
        parts.append(b"\n")
    return b"".join(parts)


def bulk_failures(answer: dict) -> list[dict]:
    """The per-document errors of a `_bulk` answer (empty when all were stored)."""
    if not answer.get("errors"):
        return []
    return [item for entry in answer.get("items", []) for item in entry.values()
            if item.get("error")]

"""The live feed's data side: what changed since a cursor, read from the store.

Bus-independent (works the same on the embedded bus and on Kafka) and resumable: the feed
follows four time fields, each with its own (time, event.id) position, and the cursor a client
resumes from is all four positions together.

    alert     alerts     event.ingested                 (stamped by the store on every write:
    incident  incidents  event.ingested                  new and re-raised documents)
    alert     alerts     watchkeeper.alert.updated_at    (analyst changes)
    incident  incidents  watchkeeper.incident.updated_at

Only documents stamped more than `settle` seconds ago are read: a write stamped at T may become
visible to searches a little after T (Elasticsearch refreshes every second), and a cursor that
had already passed T would skip it. A document can come twice when it both arrived and was
changed, or changed again: each delivery is its newest state.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from watchkeeper import timeutil
from watchkeeper.store.base import Query

SOURCES = (
    ("ai", "alert", "alerts", "event.ingested"),
    ("au", "alert", "alerts", "watchkeeper.alert.updated_at"),
    ("ii", "incident", "incidents", "event.ingested"),
    ("iu", "incident", "incidents", "watchkeeper.incident.updated_at"),
)
MAX_CURSOR_CHARS = 2048


class BadCursor(ValueError):
    pass


@dataclass
class FeedCursor:
    """Per source: (time, event.id) of the last document delivered."""
    positions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def starting_at(cls, epoch: float) -> FeedCursor:
        stamp = timeutil.format(epoch)
        return cls({key: (stamp, "") for key, *_ in SOURCES})

    def encode(self) -> str:
        compact = {k: list(v) for k, v in sorted(self.positions.items())}
        return base64.urlsafe_b64encode(json.dumps(compact, separators=(",", ":")).encode()) \
            .decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> FeedCursor:
        if len(text) > MAX_CURSOR_CHARS:
            raise BadCursor("Last-Event-ID is too long")
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            positions = {}
            for key, *_ in SOURCES:
                stamp, doc_id = raw[key]
                if not (isinstance(stamp, str) and isinstance(doc_id, str)):
                    raise TypeError
                timeutil.parse(stamp)
                positions[key] = (stamp, doc_id)
        except (ValueError, TypeError, KeyError, binascii.Error, OverflowError):
            raise BadCursor("Last-Event-ID is not a cursor this server issued") from None
        return cls(positions)


@dataclass
class FeedItem:
    event: str                  # alert | incident
    doc: dict
    cursor: str                 # resume from here to get what follows this item


def poll(reader, cursor: FeedCursor, now: float, settle: float,
         limit: int = 200) -> tuple[list[FeedItem], FeedCursor]:
    """What changed after `cursor` (up to `now - settle`), each with the cursor after it."""
    positions = dict(cursor.positions)
    items: list[FeedItem] = []
    for key, event, kind, time_field in SOURCES:
        docs = reader.changes_after(kind, time_field, positions.get(key), now - settle,
                                    Query(limit=limit))
        for doc in docs:
            positions[key] = (_stamp(doc, time_field), doc["event"]["id"])
            items.append(FeedItem(event, doc, FeedCursor(dict(positions)).encode()))
    return items, FeedCursor(positions)


def _stamp(doc: dict, dotted: str) -> str:
    value: object = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return str(value)

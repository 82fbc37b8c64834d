"""Reading event fields defensively: the bus carries schema-valid events, but anything the
schema leaves open (a section set to null, a sub-object that is a string) must never raise
inside a detector."""
from __future__ import annotations


def part(doc: dict, name: str, *more: str) -> dict:
    """The sub-object at `name`, `more` (e.g. "watchkeeper", "flow"); {} when missing or not
    an object. On the per-event path of every detector: kept to a few dict lookups."""
    sub = doc.get(name)
    for key in more:
        if sub.__class__ is not dict:
            return {}
        sub = sub.get(key)
    return sub if sub.__class__ is dict else {}


def number(value, default: float = 0) -> float:
    """A numeric field's value, `default` when missing or not a number (bools are not)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return default


def text(value) -> str | None:
    """A string field's value, None when missing or not a string (a list is not hashable)."""
    return value if isinstance(value, str) else None


def ended(event: dict, event_time: float) -> float:
    """The time of a record's last packet: its start (`event_time`, from `@timestamp`) plus
    its duration (ECS nanoseconds). A long flow's interim records all carry its start; what
    is still going on is told by their ends."""
    return event_time + number(part(event, "event").get("duration")) / 1e9

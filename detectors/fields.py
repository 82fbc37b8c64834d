"""Reading event sections defensively (a schema-valid event may carry a null section)."""
from __future__ import annotations


def part(doc: dict, *names: str) -> dict:
    """The sub-object at `names`; {} when missing or not an object."""
    for name in names:
        doc = doc.get(name) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else {}


def text(value) -> str | None:
    """A string field's value, None when missing or not a string."""
    return value if isinstance(value, str) else None

"""Comments on alerts and incidents: append-only records (kind `comments`), never edited.

A comment carries its object's site (`labels.site`), so the tenant scope that hides the
object hides its comments too; adding one is audited (`<object>.comment`).
"""
from __future__ import annotations

import uuid

from watchkeeper import timeutil
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import Page, Query

OBJECT_KINDS = {"alert": "alerts", "incident": "incidents"}   # object kind -> store kind
MAX_TEXT = 4000


def add_comment(store, object_kind: str, object_id: str, text: str, actor: str,
                now: float) -> dict:
    """Append a comment to a visible object; KeyError if `store` cannot see it."""
    kind = OBJECT_KINDS.get(object_kind)
    if kind is None:
        raise ValueError(f"comments are on {sorted(OBJECT_KINDS)}, not {object_kind!r}")
    text = (text or "").strip()
    if not 1 <= len(text) <= MAX_TEXT:
        raise ValueError(f"a comment is 1-{MAX_TEXT} characters of text")
    found = store.get_by_ids(kind, [object_id])
    if not found:
        raise KeyError(object_id)
    comment = comment_document(found[0], object_kind, object_id, text, actor, now)
    store.insert_new("comments", comment)
    store.append_audit(audit_record(f"{object_kind}.comment", actor, message=text,
                                    object_kind=object_kind, object_id=object_id,
                                    changes={"comment": {"from": None,
                                                         "to": comment["event"]["id"]}}))
    return comment


def comment_document(target: dict, object_kind: str, object_id: str, text: str, actor: str,
                     now: float) -> dict:
    doc = {"@timestamp": timeutil.format(now),
           "event": {"id": f"comment-{uuid.uuid4().hex}", "kind": "event",
                     "dataset": "watchkeeper.comment", "created": timeutil.format(now)},
           "user": {"name": actor}, "message": text,
           "watchkeeper": {"comment": {"object_kind": object_kind, "object_id": object_id}}}
    site = (target.get("labels") or {}).get("site")
    if site:
        doc["labels"] = {"site": site}
    return doc


def list_comments(store, object_kind: str, object_id: str, *, cursor: str | None = None,
                  limit: int = 100) -> Page:
    """An object's comments, oldest first, through `store` (a scope hides other sites')."""
    return store.search("comments", Query(
        terms={"watchkeeper.comment.object_id": [object_id],
               "watchkeeper.comment.object_kind": [object_kind]},
        order="asc", cursor=cursor, limit=limit))

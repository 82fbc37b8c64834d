"""Alert triage beyond one PATCH: comments, the change history, bulk changes.

The rules are the spine's (watchkeeper/store/triage.py, comments.py); these routes only check
input, scope and roles. Reads go through the tenant-scoped store: an alert outside your
subtree is 404 here too, and a bulk change never reaches it (docs/api-triage.md).
"""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path

from api.deps import CurrentActor, RawStoreDep, StoreDep
from api.errors import store_errors
from api.params import CursorDep, Limit
from api.routes.alerts import NOT_FOUND, alert_query, load_alert
from api.schemas.triage import (AlertHistory, BulkChange, BulkResult, CommentCreate,
                                CommentList, CommentPublic, HistoryEntry, Refusal)
from api.security import READ_ROLES, TRIAGE_ROLES, allow
from watchkeeper.store import comments, triage

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=128, description="event.id of the alert")]


@router.get("/{alert_id}/comments", response_model=CommentList, responses=NOT_FOUND,
            summary="The alert's comments, oldest first", dependencies=[allow(*READ_ROLES)])
def list_comments(store: StoreDep, alert_id: AlertId, cursor: CursorDep, limit: Limit = 100):
    load_alert(store, alert_id)
    with store_errors():
        page = comments.list_comments(store, "alert", alert_id, cursor=cursor, limit=limit)
    return CommentList(items=page.items, total=page.total, next_cursor=page.next_cursor)


@router.post("/{alert_id}/comments", response_model=CommentPublic, status_code=201,
             responses=NOT_FOUND, summary="Add a comment (append-only, audited)",
             dependencies=[allow(*TRIAGE_ROLES)])
def add_comment(store: StoreDep, actor: CurrentActor, alert_id: AlertId,
                body: Annotated[CommentCreate, Body()]):
    try:
        with store_errors():
            return comments.add_comment(store, "alert", alert_id, body.text, actor, time.time())
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no alert with id {alert_id!r}") from None


@router.get("/{alert_id}/history", response_model=AlertHistory, responses=NOT_FOUND,
            summary="Every change of the alert: who, when, before and after (from the audit "
                    "trail), oldest first", dependencies=[allow(*READ_ROLES)])
def read_history(store: StoreDep, raw: RawStoreDep, alert_id: AlertId, cursor: CursorDep,
                 limit: Limit = 100):
    load_alert(store, alert_id)       # the audit trail is not scoped: check the alert is
    with store_errors():
        page = triage.history(raw, "alert", alert_id, cursor=cursor, limit=limit)
    return AlertHistory(alert_id=alert_id, total=page.total, next_cursor=page.next_cursor,
                        items=[HistoryEntry(**triage.history_entry(r, alert_id))
                               for r in page.items])


@router.post("/bulk", response_model=BulkResult,
             summary="Change many alerts by ids or by a query (the search's filters)",
             responses={422: {"description": "Bad change, or the query matches more than "
                                             f"{triage.MAX_BULK} alerts"}},
             dependencies=[allow(*TRIAGE_ROLES)])
def bulk_change(store: StoreDep, actor: CurrentActor, body: Annotated[BulkChange, Body()]):
    target = body.ids if body.ids is not None else alert_query(body.query, limit=1000)
    try:
        result = triage.change_alerts(store, target, body.change.change(), actor, time.time())
    except ValueError as exc:          # too many matches: narrow the query
        raise HTTPException(status_code=422, detail=str(exc)) from None
    return BulkResult(matched=result.matched, changed=len(result.changed),
                      changed_ids=result.changed,
                      refused=[Refusal(id=i, reason=r) for i, r in result.refused.items()],
                      target="ids" if body.ids is not None else "query")

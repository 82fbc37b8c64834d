"""Events: filtered search over flows, DNS, HTTP, TLS and log records, newest first."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query as Param

from api.deps import StoreDep
from api.errors import store_errors
from api.security import READ_ROLES, allow
from api.params import CursorDep, Ip, Limit, TimeRangeDep
from api.schemas.events import EventList
from watchkeeper.store.base import Query

router = APIRouter(prefix="/events", tags=["events"])

Dataset = Annotated[str, Param(min_length=1, max_length=128)]


@router.get("", response_model=EventList, summary="Search events, newest first",
            responses={400: {"description": "Bad cursor"}}, dependencies=[allow(*READ_ROLES)])
def list_events(
    store: StoreDep,
    span: TimeRangeDep,
    cursor: CursorDep,
    dataset: Annotated[list[Dataset], Param(description="Repeatable, e.g. watchkeeper.flow")] = [],
    ip: Ip = None,
    limit: Limit = 100,
):
    terms = {"event.dataset": list(dict.fromkeys(dataset))} if dataset else {}
    query = Query(since=span.since, until=span.until, ip=ip, limit=limit, cursor=cursor,
                  terms=terms)
    with store_errors():
        page = store.search("events", query)
    return EventList(items=page.items, total=page.total, next_cursor=page.next_cursor)

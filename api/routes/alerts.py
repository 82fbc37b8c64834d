"""Alerts: list with filters, one alert, its evidence, and the analyst's update."""
from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Path
from fastapi import Query as Param
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import CurrentActor, StoreDep
from api.errors import store_errors
from api.security import READ_ROLES, TRIAGE_ROLES, allow
from api.params import (AlertStatus, Category, CursorDep, Ip, Limit, Severity, TimeRangeDep,
                        Verdict)
from api.schemas.alerts import AlertEvidence, AlertList, AlertPublic, AlertUpdate
from api.schemas.triage import AlertFilter
from watchkeeper.schema import get
from watchkeeper.store import triage
from watchkeeper.store.base import AlertConflict, Query
from watchkeeper.store.legacy import upgraded
from watchkeeper.store.scoped import ScopedStore

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=128, description="event.id of the alert")]
NOT_FOUND = {404: {"description": "No alert with this id"}}


SORTS = {"newest": (None, "desc"), "oldest": (None, "asc"),
         "severity": ("event.severity", "desc"), "risk": ("event.risk_score", "desc")}
Sort = Literal[tuple(SORTS)]                       # type: ignore[valid-type]
Names = Annotated[list[str], Param(description="Repeatable", max_length=100)]


def alert_query(filters: AlertFilter, *, limit: int = 100, cursor: str | None = None,
                sort: str = "newest") -> Query:
    """The store query for the search's filters (GET /alerts and bulk-by-query share it)."""
    terms = {"watchkeeper.alert.category": filters.category, "event.severity": filters.severity,
             "watchkeeper.alert.detector": filters.detector,
             "watchkeeper.alert.status": triage.status_filter(filters.status),
             "watchkeeper.alert.verdict": filters.verdict, "labels.site": filters.site,
             "watchkeeper.alert.tags": filters.tag, "watchkeeper.alert.assignee": filters.assignee}
    field, order = SORTS[sort]
    return Query(since=filters.since, until=filters.until, ip=filters.ip, q=filters.q or None,
                 limit=limit, cursor=cursor, sort=field, order=order,
                 terms={k: list(dict.fromkeys(v)) for k, v in terms.items() if v})


def as_filter(**values) -> AlertFilter:
    """Query parameters (already checked one by one) checked together, as in a bulk body."""
    try:
        return AlertFilter(**values)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in exc.errors(
            include_url=False, include_context=False)]) from None


def load_alert(store: ScopedStore, alert_id: str) -> dict:
    with store_errors():
        found = store.get_by_ids("alerts", [alert_id])
    if not found:
        raise HTTPException(status_code=404, detail=f"no alert with id {alert_id!r}")
    return found[0]


@router.get("", response_model=AlertList, summary="Search alerts (newest first by default)",
            responses={400: {"description": "Bad cursor"}}, dependencies=[allow(*READ_ROLES)])
def list_alerts(
    store: StoreDep,
    span: TimeRangeDep,
    cursor: CursorDep,
    category: Annotated[list[Category], Param(description="Repeatable")] = [],
    severity: Annotated[list[Severity], Param(description="Repeatable: 1-4 or low, medium, "
                                                          "high, critical")] = [],
    status: Annotated[list[AlertStatus], Param(description="Repeatable")] = [],
    verdict: Annotated[list[Verdict], Param(description="Repeatable")] = [],
    detector: Names = [],
    site: Names = [],
    tag: Names = [],
    assignee: Names = [],
    ip: Ip = None,
    q: Annotated[str | None, Param(max_length=200, description="Text in the message")] = None,
    sort: Annotated[Sort, Param(description="newest, oldest, severity or risk (highest "
                                            "first, then newest)")] = "newest",
    limit: Limit = 100,
):
    filters = as_filter(since=span.since, until=span.until, category=category,
                        severity=severity, status=status, verdict=verdict, detector=detector,
                        site=site, tag=tag, assignee=assignee, ip=ip, q=q or None)
    with store_errors():
        page = store.search("alerts", alert_query(filters, limit=limit, cursor=cursor,
                                                  sort=sort))
    return AlertList(items=[upgraded(a) for a in page.items], total=page.total,
                     next_cursor=page.next_cursor)


@router.get("/{alert_id}", response_model=AlertPublic, responses=NOT_FOUND,
            dependencies=[allow(*READ_ROLES)])
def read_alert(store: StoreDep, alert_id: AlertId):
    return upgraded(load_alert(store, alert_id))


@router.get("/{alert_id}/evidence", response_model=AlertEvidence, responses=NOT_FOUND,
            summary="The events the alert was raised on", dependencies=[allow(*READ_ROLES)])
def read_evidence(store: StoreDep, alert_id: AlertId):
    alert = load_alert(store, alert_id)
    ids = [i for i in get(alert, "watchkeeper.alert.evidence", None) or [] if isinstance(i, str)]
    with store_errors():
        events = store.get_by_ids("events", ids) if ids else []
    found = {get(e, "event.id") for e in events}
    return AlertEvidence(alert_id=alert_id, items=events,
                         missing=[i for i in dict.fromkeys(ids) if i not in found])


@router.patch("/{alert_id}", response_model=AlertPublic,
              responses={**NOT_FOUND, 409: {"description": "Not a move from the alert's "
                                                          "status: the answer names the allowed "
                                                          "ones"}},
              summary="Triage one alert: status, verdict, assignee, tags (audited)",
              dependencies=[allow(*TRIAGE_ROLES)])
def update_alert(store: StoreDep, actor: CurrentActor, alert_id: AlertId,
                 body: Annotated[AlertUpdate, Body()]):
    try:
        return triage.change_alert(store, alert_id, body.change(), actor, time.time())
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no alert with id {alert_id!r}") from None
    except AlertConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None

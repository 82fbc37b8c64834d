"""Alerts: list with filters, one alert, its evidence, and the analyst's update."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path
from fastapi import Query as Param

from api.deps import CurrentActor, StoreDep
from api.errors import store_errors
from api.security import READ_ROLES, TRIAGE_ROLES, allow
from api.params import (AlertStatus, Category, CursorDep, Ip, Limit, Severity, TimeRangeDep)
from api.schemas.alerts import AlertEvidence, AlertList, AlertPublic, AlertUpdate
from watchkeeper.schema import get
from watchkeeper.store.base import Query
from watchkeeper.store.scoped import ScopedStore

router = APIRouter(prefix="/alerts", tags=["alerts"])

AlertId = Annotated[str, Path(min_length=1, max_length=128, description="event.id of the alert")]
NOT_FOUND = {404: {"description": "No alert with this id"}}


def alert_terms(category: list[str], severity: list[int], status: list[str]) -> dict[str, list]:
    terms = {"watchkeeper.alert.category": category, "event.severity": severity,
             "watchkeeper.alert.status": status}
    return {name: list(dict.fromkeys(values)) for name, values in terms.items() if values}


def load_alert(store: ScopedStore, alert_id: str) -> dict:
    with store_errors():
        found = store.get_by_ids("alerts", [alert_id])
    if not found:
        raise HTTPException(status_code=404, detail=f"no alert with id {alert_id!r}")
    return found[0]


@router.get("", response_model=AlertList, summary="Search alerts, newest first",
            responses={400: {"description": "Bad cursor"}}, dependencies=[allow(*READ_ROLES)])
def list_alerts(
    store: StoreDep,
    span: TimeRangeDep,
    cursor: CursorDep,
    category: Annotated[list[Category], Param(description="Repeatable")] = [],
    severity: Annotated[list[Severity], Param(description="Repeatable: 1-4 or low, medium, "
                                                          "high, critical")] = [],
    status: Annotated[list[AlertStatus], Param(description="Repeatable")] = [],
    ip: Ip = None,
    q: Annotated[str | None, Param(max_length=200, description="Text in the message")] = None,
    limit: Limit = 100,
):
    query = Query(since=span.since, until=span.until, ip=ip, q=q or None, limit=limit,
                  cursor=cursor, terms=alert_terms(category, severity, status))
    with store_errors():
        page = store.search("alerts", query)
    return AlertList(items=page.items, total=page.total, next_cursor=page.next_cursor)


@router.get("/{alert_id}", response_model=AlertPublic, responses=NOT_FOUND,
            dependencies=[allow(*READ_ROLES)])
def read_alert(store: StoreDep, alert_id: AlertId):
    return load_alert(store, alert_id)


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


@router.patch("/{alert_id}", response_model=AlertPublic, responses=NOT_FOUND,
              summary="Change status or assignee (audited)",
              dependencies=[allow(*TRIAGE_ROLES)])
def update_alert(store: StoreDep, actor: CurrentActor, alert_id: AlertId,
                 body: Annotated[AlertUpdate, Body()]):
    try:
        with store_errors():
            return store.update_alert(alert_id, body.changes(), actor=actor, comment=body.comment)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no alert with id {alert_id!r}") from None

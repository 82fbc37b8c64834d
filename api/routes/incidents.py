"""Incidents: correlated alerts, newest first, and one incident with its alerts."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path
from fastapi import Query as Param

from api.deps import StoreDep
from api.errors import store_errors
from api.security import READ_ROLES, allow
from api.params import CursorDep, Ip, Limit, TimeRangeDep
from api.schemas.alerts import AlertPublic
from api.schemas.incidents import IncidentList, IncidentPublic
from watchkeeper.store.base import Query

router = APIRouter(prefix="/incidents", tags=["incidents"])

IncidentId = Annotated[str, Path(max_length=128)]
Status = Literal["new", "acknowledged", "in_progress", "resolved", "false_positive"]


@router.get("", response_model=IncidentList, summary="Search incidents, newest first",
            responses={400: {"description": "Bad cursor"}}, dependencies=[allow(*READ_ROLES)])
def list_incidents(
    store: StoreDep,
    span: TimeRangeDep,
    cursor: CursorDep,
    status: Annotated[list[Status], Param(description="Repeatable")] = [],
    level: Annotated[list[Literal["I", "II", "III", "IV"]], Param(description="Repeatable")] = [],
    ip: Ip = None,
    limit: Limit = 100,
):
    terms = {}
    if status:
        terms["watchkeeper.incident.status"] = list(dict.fromkeys(status))
    if level:
        terms["watchkeeper.incident.level"] = list(dict.fromkeys(level))
    query = Query(since=span.since, until=span.until, ip=ip, limit=limit, cursor=cursor,
                  terms=terms)
    with store_errors():
        page = store.search("incidents", query)
    return IncidentList(items=page.items, total=page.total, next_cursor=page.next_cursor)


@router.get("/{incident_id}", response_model=IncidentPublic, responses={404: {}},
            dependencies=[allow(*READ_ROLES)])
def get_incident(incident_id: IncidentId, store: StoreDep):
    with store_errors():
        found = store.get_by_ids("incidents", [incident_id])
    if not found:
        raise HTTPException(404, f"no incident {incident_id}")
    return found[0]


@router.get("/{incident_id}/alerts", response_model=list[AlertPublic], responses={404: {}},
            dependencies=[allow(*READ_ROLES)])
def incident_alerts(incident_id: IncidentId, store: StoreDep):
    with store_errors():
        found = store.get_by_ids("incidents", [incident_id])
        if not found:
            raise HTTPException(404, f"no incident {incident_id}")
        ids = found[0]["watchkeeper"]["incident"]["alerts"]
        return store.get_by_ids("alerts", ids)

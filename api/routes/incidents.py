"""Incidents, read side: search, one incident, its alerts, its timeline, MTTA/MTTR.

Every incident is shown with its effective level, warning colour and reporting clock
(watchkeeper.incidents.present), computed against the request's time.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi import Query as Param

from api.deps import IncidentPolicyDep, NowDep, StoreDep
from api.errors import store_errors
from api.focus import FOCUS_404, FocusDep
from api.params import CursorDep, Ip, Limit, TimeRangeDep
from api.schemas.alerts import AlertPublic
from api.schemas.incidents import IncidentList, IncidentPublic, ResponseTimes, Timeline
from api.security import READ_ROLES, allow
from watchkeeper.incidents import Level, Status
from watchkeeper.store import incident_views, runs
from watchkeeper.store.base import Query
from watchkeeper.store.incidents import load

router = APIRouter(prefix="/incidents", tags=["incidents"])

IncidentId = Annotated[str, Path(min_length=1, max_length=128)]
NOT_FOUND = {404: {"description": "No incident with this id (or not in your sites)"}}
SiteId = Annotated[str | None, Param(min_length=1, max_length=64,
                                     description="Only incidents escalated to this site")]


def load_incident(store, incident_id: str) -> dict:
    try:
        with store_errors():
            return load(store, incident_id)
    except KeyError:
        raise HTTPException(404, f"no incident {incident_id!r}") from None


@router.get("", response_model=IncidentList, summary="Search incidents, newest first",
            responses={400: {"description": "Bad cursor"}, **FOCUS_404},
            dependencies=[allow(*READ_ROLES)])
def list_incidents(
    focus: FocusDep, policy: IncidentPolicyDep, now: NowDep,
    span: TimeRangeDep,
    cursor: CursorDep,
    status: Annotated[list[Status], Param(description="Repeatable")] = [],
    level: Annotated[list[Level], Param(description="Repeatable: the level as graded "
                                                    "(responder's, else suggested)")] = [],
    escalated_to: SiteId = None,
    ip: Ip = None,
    limit: Limit = 100,
):
    terms = {"watchkeeper.incident.status": list(dict.fromkeys(status)),
             "watchkeeper.incident.level": list(dict.fromkeys(level)),
             "watchkeeper.incident.escalated_to": [escalated_to] if escalated_to else []}
    query = Query(since=span.since, until=span.until, ip=ip, limit=limit, cursor=cursor,
                  terms={k: v for k, v in terms.items() if v})
    with store_errors():
        page = focus.store.search("incidents", query)
    return IncidentList(items=[policy.present(d, now) for d in page.items], total=page.total,
                        next_cursor=page.next_cursor)


@router.get("/response-times", response_model=ResponseTimes,
            summary="MTTA and MTTR per site and level (incidents discovered in the range)",
            dependencies=[allow(*READ_ROLES)])
def response_times(store: StoreDep, span: TimeRangeDep):
    with store_errors():
        rows = incident_views.response_times(store, Query(since=span.since, until=span.until))
    return ResponseTimes(items=[asdict(r) for r in rows])


@router.get("/{incident_id}", response_model=IncidentPublic, responses=NOT_FOUND,
            dependencies=[allow(*READ_ROLES)])
def get_incident(incident_id: IncidentId, store: StoreDep, policy: IncidentPolicyDep,
                 now: NowDep):
    return policy.present(load_incident(store, incident_id), now)


@router.get("/{incident_id}/alerts", response_model=list[AlertPublic], responses=NOT_FOUND,
            dependencies=[allow(*READ_ROLES)])
def incident_alerts(incident_id: IncidentId, store: StoreDep):
    ids = load_incident(store, incident_id)["watchkeeper"]["incident"].get("alerts", [])
    with store_errors():
        return store.get_by_ids("alerts", ids)


@router.get("/{incident_id}/timeline", response_model=Timeline, responses=NOT_FOUND,
            summary="Alerts, level and status changes, reports, links, escalation, comments, "
                    "playbook runs and their steps",
            dependencies=[allow(*READ_ROLES)])
def incident_timeline(incident_id: IncidentId, store: StoreDep):
    load_incident(store, incident_id)
    with store_errors():
        entries = incident_views.timeline(store, incident_id,
                                          sources=[runs.timeline_entries])
    return Timeline(incident_id=incident_id, items=[asdict(e) for e in entries])

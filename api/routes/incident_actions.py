"""Incidents, write side: status/assignee, level (responders), report, links, escalation,
comments. Each is a spine operation (watchkeeper/store/incidents.py) and audited there."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Request

from api.deps import CurrentActor, IncidentPolicyDep, NowDep, StoreDep, VisibleSitesDep
from api.errors import store_errors
from api.routes.incidents import NOT_FOUND, IncidentId
from api.schemas.incidents import (CommentCreate, Escalation, IncidentPublic, IncidentUpdate,
                                   LevelChange, LinkRequest, LinkResult, ReportRecord)
from api.security import TRIAGE_ROLES, allow, get_access
from watchkeeper.store import incidents as ops

router = APIRouter(prefix="/incidents", tags=["incidents"])
RESPONDERS = ("responder",)
AlertId = Annotated[str, Path(min_length=1, max_length=128)]
REFUSED = {**NOT_FOUND, 400: {"description": "Not possible for this incident"}}


@contextmanager
def incident_errors(incident_id: str) -> Iterator[None]:
    """KeyError (not found or outside your sites) -> 404, PermissionError -> 403,
    ValueError -> 400."""
    try:
        with store_errors():
            yield
    except KeyError:
        raise HTTPException(404, f"no incident {incident_id!r}") from None
    except PermissionError as exc:
        raise HTTPException(403, str(exc)) from None


@router.patch("/{incident_id}", response_model=IncidentPublic, responses=NOT_FOUND,
              summary="Change status or assignee (audited)", dependencies=[allow(*TRIAGE_ROLES)])
def update_incident(incident_id: IncidentId, body: Annotated[IncidentUpdate, Body()],
                    store: StoreDep, actor: CurrentActor, policy: IncidentPolicyDep,
                    now: NowDep):
    with incident_errors(incident_id):
        doc = ops.update(store, incident_id, body.changes(), actor, now, body.comment)
    return policy.present(doc, now)


@router.put("/{incident_id}/level", response_model=IncidentPublic, responses=REFUSED,
            summary="Set the emergency level I–IV (responders; audited, reason required)",
            dependencies=[allow(*RESPONDERS)])
def set_level(incident_id: IncidentId, body: Annotated[LevelChange, Body()], store: StoreDep,
              actor: CurrentActor, policy: IncidentPolicyDep, now: NowDep):
    with incident_errors(incident_id):
        doc = ops.set_level(store, incident_id, body.level, actor, now, body.reason)
    return policy.present(doc, now)


@router.post("/{incident_id}/report", response_model=IncidentPublic, responses=REFUSED,
             summary="Record \"reported to X at T\": stops the reporting clock",
             dependencies=[allow(*TRIAGE_ROLES)])
def record_report(incident_id: IncidentId, body: Annotated[ReportRecord, Body()],
                  store: StoreDep, actor: CurrentActor, policy: IncidentPolicyDep, now: NowDep):
    with incident_errors(incident_id):
        doc = ops.record_report(store, incident_id, body.reported_to, body.reported_at, actor,
                                now, body.comment)
    return policy.present(doc, now)


@router.post("/{incident_id}/alerts", response_model=LinkResult, responses=NOT_FOUND,
             summary="Link alerts (each leaves the incident it was in)",
             dependencies=[allow(*TRIAGE_ROLES)])
def link_alerts(incident_id: IncidentId, body: Annotated[LinkRequest, Body()], store: StoreDep,
                actor: CurrentActor, policy: IncidentPolicyDep, now: NowDep):
    with incident_errors(incident_id):
        result = ops.link_alerts(store, incident_id, body.alert_ids, actor, now, body.reason)
    return _link_result(result, policy, now)


@router.delete("/{incident_id}/alerts/{alert_id}", response_model=LinkResult,
               responses=NOT_FOUND, summary="Unlink an alert (the correlator won't re-add it)",
               dependencies=[allow(*TRIAGE_ROLES)])
def unlink_alert(incident_id: IncidentId, alert_id: AlertId, store: StoreDep,
                 actor: CurrentActor, policy: IncidentPolicyDep, now: NowDep):
    with incident_errors(incident_id):
        result = ops.unlink_alerts(store, incident_id, [alert_id], actor, now)
    if not result.changed:
        raise HTTPException(404, f"alert {alert_id!r} is not in incident {incident_id!r}")
    return _link_result(result, policy, now)


def _link_result(result, policy, now) -> LinkResult:
    return LinkResult(incident=policy.present(result.incident, now), changed=result.changed,
                      missing=result.missing)


@router.post("/{incident_id}/escalate", response_model=IncidentPublic,
             responses={**REFUSED, 403: {"description": "Already escalated above you"}},
             summary="Escalate to the parent site of its current level",
             dependencies=[allow(*TRIAGE_ROLES)])
def escalate(request: Request, incident_id: IncidentId, body: Annotated[Escalation, Body()],
             store: StoreDep, sites: VisibleSitesDep, actor: CurrentActor,
             policy: IncidentPolicyDep, now: NowDep):
    parents = get_access(request).sites
    with incident_errors(incident_id):
        doc = ops.escalate(store, incident_id, parents, actor, sites, now, body.reason)
    return policy.present(doc, now)


@router.post("/{incident_id}/comments", status_code=204, responses=NOT_FOUND,
             summary="Add a comment (append-only; shown in the timeline)",
             dependencies=[allow(*TRIAGE_ROLES)])
def add_comment(incident_id: IncidentId, body: Annotated[CommentCreate, Body()],
                store: StoreDep, actor: CurrentActor, now: NowDep) -> None:
    with incident_errors(incident_id):
        ops.add_comment(store, incident_id, body.text, actor, now)

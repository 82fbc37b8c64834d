"""Playbook runs: list, one run with its record, approve or deny a waiting step, start by hand.

Reads go through the tenant scope (a run outside the caller's subtree is 404). Decisions are
written by watchkeeper.store.runs.decide: the requester cannot decide, the first decision
stands, each one is audited; the playbook worker acts on it at its next tick.
"""
from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Path
from fastapi import Query as Param
from pydantic import StringConstraints

from api.deps import CurrentActor, StoreDep
from api.errors import store_errors
from api.params import CursorDep, Limit
from api.schemas.playbooks import (DecisionCreate, DecisionPublic, RunCreate, RunDetail,
                                   RunList, RunPublic)
from api.security import READ_ROLES, allow
from watchkeeper.store import runs
from watchkeeper.store.base import Query
from watchkeeper.store.scoped import ScopedStore

router = APIRouter(prefix="/playbooks", tags=["playbooks"])

ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
RunId = Annotated[str, Path(min_length=1, max_length=128, description="the run's id")]
Status = Literal["queued", "running", "waiting", "succeeded", "failed", "denied", "escalated"]
DECIDE_ROLES = ("responder",)
NOT_FOUND = {404: {"description": "No run with this id"}}
CONFLICT = {409: {"description": "Not waiting for a decision, already decided, or the "
                                 "caller requested it"}}


def _load(store: ScopedStore, run_id: str) -> dict:
    with store_errors():
        found = [d for d in store.get_by_ids("runs", [run_id])
                 if d["event"].get("dataset") == runs.RUN]
    if not found:
        raise HTTPException(404, f"no run with id {run_id!r}")
    return found[0]


@router.get("/runs", response_model=RunList, summary="Playbook runs, newest first",
            dependencies=[allow(*READ_ROLES)])
def list_runs(store: StoreDep, cursor: CursorDep,
              status: Annotated[list[Status], Param(description="Repeatable")] = [],
              playbook: Annotated[str | None, Param(max_length=64)] = None,
              about: Annotated[list[ObjectId], Param(max_length=100, description=(
                  "Repeatable alert or incident id: the runs about them (an incident's "
                  "timeline); one page, oldest first"))] = [],
              limit: Limit = 100):
    if about:
        with store_errors():
            found = [d for d in runs.runs_about(store.store, about, limit=limit)
                     if store.visible(d)]
        return RunList(items=found, total=len(found), next_cursor=None)
    terms: dict[str, list] = {"event.dataset": [runs.RUN]}
    if status:
        terms["watchkeeper.run.status"] = list(dict.fromkeys(status))
    if playbook:
        terms["watchkeeper.run.playbook"] = [playbook]
    with store_errors():
        page = store.search("runs", Query(terms=terms, limit=limit, cursor=cursor))
    return RunList(items=page.items, total=page.total, next_cursor=page.next_cursor)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=NOT_FOUND,
            summary="One run: its steps, every attempt, every decision",
            dependencies=[allow(*READ_ROLES)])
def read_run(store: StoreDep, run_id: RunId):
    run = _load(store, run_id)
    with store_errors():
        return RunDetail(run=run, attempts=runs.attempts(store.store, run_id),
                         decisions=runs.decisions(store.store, run_id))


def _decide(store: ScopedStore, run_id: str, body: DecisionCreate, actor: str,
            approve: bool) -> DecisionPublic:
    run = _load(store, run_id)
    step = body.step or runs.waiting_step(run)
    if step is None or runs.waiting_step(run) != step:
        raise HTTPException(409, f"run {run_id} is not waiting for a decision"
                                 + (f" on step {body.step!r}" if body.step else ""))
    try:
        with store_errors():
            return DecisionPublic(**runs.decide(store.store, run, step, approve, actor,
                                                body.comment, time.time()))
    except runs.DecisionRefused as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/runs/{run_id}/approve", response_model=DecisionPublic,
             responses={**NOT_FOUND, **CONFLICT}, summary="Approve the step the run waits on",
             dependencies=[allow(*DECIDE_ROLES)])
def approve(store: StoreDep, actor: CurrentActor, run_id: RunId,
            body: Annotated[DecisionCreate, Body()] = DecisionCreate()):
    return _decide(store, run_id, body, actor, True)


@router.post("/runs/{run_id}/deny", response_model=DecisionPublic,
             responses={**NOT_FOUND, **CONFLICT}, summary="Deny the step the run waits on",
             dependencies=[allow(*DECIDE_ROLES)])
def deny(store: StoreDep, actor: CurrentActor, run_id: RunId,
         body: Annotated[DecisionCreate, Body()] = DecisionCreate()):
    return _decide(store, run_id, body, actor, False)


@router.post("/runs", response_model=RunPublic, status_code=201,
             responses={404: {"description": "No such alert"},
                        200: {"description": "This request already started a run"}},
             summary="Start a playbook by hand on an alert (the worker runs it)",
             dependencies=[allow(*DECIDE_ROLES)])
def start_run(store: StoreDep, actor: CurrentActor, body: Annotated[RunCreate, Body()],
              idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    with store_errors():
        found = store.get_by_ids("alerts", [body.alert_id])
        if not found:
            raise HTTPException(404, f"no alert with id {body.alert_id!r}")
        alert = found[0]
        key = f"manual:{body.alert_id}:{actor}:{idempotency_key or time.time_ns()}"
        target = (alert.get("source") or {}).get("ip")
        new = runs.NewRun(body.playbook, 0, "manual", key, body.alert_id, target, body.inputs,
                          actor, (alert.get("labels") or {}).get("site"))
        doc, _ = runs.create_run(store.store, new, time.time(), subject=alert)
    return doc

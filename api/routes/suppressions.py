"""Suppression rules: the security administrator lists, creates, edits and expires them; an
analyst closing an alert as a false or benign positive can make one from it.

A rule covers the subtree of its site, which must be inside the caller's (a rule outside it
answers 404). Creating one closes the stored open alerts it matches (`closed` in the answer);
the alerting stage silences new ones within a few seconds. Logic: watchkeeper/store/suppressions.py.
"""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path

from api.deps import AccessDep, CurrentActor, RawStoreDep, StoreDep
from api.errors import store_errors
from api.schemas.suppressions import (SuppressionCreate, SuppressionCreated, SuppressionFromAlert,
                                      SuppressionList, SuppressionPublic, SuppressionUpdate)
from api.security import CurrentPrincipal, allow
from watchkeeper.identity import ROOT, Principal
from watchkeeper.store import suppressions as rules
from watchkeeper.store.scoped import subtree

router = APIRouter(tags=["suppressions"])

RuleId = Annotated[str, Path(min_length=1, max_length=64)]
AlertId = Annotated[str, Path(min_length=1, max_length=128, description="event.id of the alert")]
SECURITY = allow("security_admin")
FROM_VERDICT = allow("analyst", "responder", "security_admin")
NOT_FOUND = {404: {"description": "No such rule in your subtree"}}


def _public(rule: rules.SuppressionRule, now: float) -> SuppressionPublic:
    return SuppressionPublic(**rule.model_dump(), active=rule.active(now))


def _scope(access, principal: Principal) -> list[str] | None:
    return subtree(access.sites or {}, principal.site)


def _refused(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"type": "value_error", "loc": ["body", field], "msg": message}])


def _rule_site(access, principal: Principal, wanted: str | None) -> str | None:
    """The site a new rule covers: the caller's by default; None = every site (root only)."""
    site = wanted or principal.site
    if site == ROOT:
        if principal.site != ROOT:
            raise _refused("site", "only a principal bound to the root may cover every site")
        return None
    if access.sites is not None and site not in access.sites:
        raise _refused("site", f"no site {site!r} in the inventory")
    scope = _scope(access, principal)
    if scope is not None and site not in scope:
        raise _refused("site", f"site {site!r} is not in your subtree")
    return site


def _create(store, fields: dict, site: str | None, access, actor: str) -> SuppressionCreated:
    now = time.time()
    covered = subtree(access.sites or {}, site) if site else None
    try:
        created = rules.create_rule(store, {**fields, "site": site}, actor, now, covered)
    except ValueError as exc:          # pydantic's ValidationError is one too
        raise _refused("expires_at" if "expires_at" in str(exc) else "rule", _first(exc)) \
            from None
    return SuppressionCreated(rule=_public(created.rule, now), closed=created.closed)


def _first(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    return str(errors()[0]["msg"]) if callable(errors) and errors() else str(exc)


def _expiry(body) -> dict:
    return {"expires_at": body.expires_at.isoformat()} if body.expires_at else {}


@router.get("/suppressions", response_model=SuppressionList, dependencies=[SECURITY])
def list_suppressions(store: RawStoreDep, access: AccessDep, principal: CurrentPrincipal):
    now = time.time()
    found = rules.list_rules(store, _scope(access, principal))
    return SuppressionList(items=[_public(r, now) for r in found], total=len(found))


@router.post("/suppressions", response_model=SuppressionCreated, status_code=201,
             dependencies=[SECURITY], summary="Create a rule; closes the open alerts it matches")
def create_suppression(body: SuppressionCreate, store: RawStoreDep, access: AccessDep,
                       principal: CurrentPrincipal, actor: CurrentActor):
    site = _rule_site(access, principal, body.site)
    fields = body.model_dump(exclude={"site", "expires_at"}, exclude_none=True) | _expiry(body)
    return _create(store, fields, site, access, actor)


def _load(store, access, principal: Principal, rule_id: str) -> rules.SuppressionRule:
    rule = rules.get_rule(store, rule_id)
    if rule is None or not rules.visible(rule, _scope(access, principal)):
        raise HTTPException(404, f"no suppression rule {rule_id!r}")
    return rule


@router.get("/suppressions/{rule_id}", response_model=SuppressionPublic, responses=NOT_FOUND,
            dependencies=[SECURITY])
def read_suppression(rule_id: RuleId, store: RawStoreDep, access: AccessDep,
                     principal: CurrentPrincipal):
    return _public(_load(store, access, principal, rule_id), time.time())


@router.patch("/suppressions/{rule_id}", response_model=SuppressionPublic, responses=NOT_FOUND,
              dependencies=[SECURITY], summary="Edit reason, verdict, expiry or what it matches")
def update_suppression(rule_id: RuleId, body: Annotated[SuppressionUpdate, Body()],
                       store: RawStoreDep, access: AccessDep, principal: CurrentPrincipal,
                       actor: CurrentActor):
    _load(store, access, principal, rule_id)
    now = time.time()
    try:
        rule = rules.update_rule(store, rule_id, body.changes(), actor, now)
    except ValueError as exc:
        raise _refused("rule", _first(exc)) from None
    return _public(rule, now)


@router.post("/suppressions/{rule_id}/expire", response_model=SuppressionPublic,
             responses=NOT_FOUND, dependencies=[SECURITY], summary="Stop the rule matching now")
def expire_suppression(rule_id: RuleId, store: RawStoreDep, access: AccessDep,
                       principal: CurrentPrincipal, actor: CurrentActor):
    _load(store, access, principal, rule_id)
    now = time.time()
    return _public(rules.expire_rule(store, rule_id, actor, now), now)


@router.post("/alerts/{alert_id}/suppress", response_model=SuppressionCreated, status_code=201,
             responses={404: {"description": "No alert with this id"}},
             dependencies=[FROM_VERDICT],
             summary="Close this alert as a false/benign positive and silence alerts like it")
def suppress_alert(alert_id: AlertId, body: SuppressionFromAlert, scoped: StoreDep,
                   store: RawStoreDep, access: AccessDep, actor: CurrentActor):
    with store_errors():
        found = scoped.get_by_ids("alerts", [alert_id])
    if not found:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    alert = found[0]
    try:
        matched = rules.fields_from_alert(alert, list(body.match))
    except ValueError as exc:
        raise _refused("match", str(exc)) from None
    fields = {"reason": body.reason, "verdict": body.verdict, **_expiry(body), **matched}
    site = (alert.get("labels") or {}).get("site")
    return _create(store, fields, site, access, actor)



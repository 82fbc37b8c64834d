"""open_incident, update_incident, set_emergency_level: the run's incident."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from playbooks.actions import incident_ops
from playbooks.actions.base import Action, ActionContext, ActionResult, Params


def _alert(ctx: ActionContext) -> dict | None:
    """The run's alert as stored, or as the run saw it when the indexer has not written it."""
    object_id = (ctx.run.get("trigger") or {}).get("object_id")
    found = ctx.store.get_by_ids("alerts", [object_id]) if object_id else []
    return found[0] if found else (ctx.run.get("subject") or None)


def _incident_id(ctx: ActionContext, given: str | None) -> str | None:
    if given:
        return given
    trigger = ctx.run.get("trigger") or {}
    if trigger.get("kind") == "incident":
        return trigger.get("object_id")
    for step in (ctx.run.get("steps") or {}).values():
        iid = (step.get("output") or {}).get("incident_id")
        if iid:
            return iid
    alert = _alert(ctx)
    return (alert.get("watchkeeper", {}).get("alert") or {}).get("incident_id") if alert else None


class OpenParams(Params):
    pass


class OpenIncident(Action):
    name = "open_incident"
    Params = OpenParams
    idempotent = True          # the incident id is the alert's: opening twice finds it

    def run(self, ctx: ActionContext, params: OpenParams) -> ActionResult:
        if (ctx.run.get("trigger") or {}).get("kind") == "incident":
            return ActionResult("ok", {"incident_id": ctx.run["trigger"]["object_id"],
                                       "created": False})
        alert = _alert(ctx)
        if alert is None:
            return ActionResult("failed", {}, "the run's alert is not in the store",
                                message_zh="存储中找不到本次运行的告警")
        doc, created = incident_ops.open_incident(ctx.store, alert, ctx.actor, ctx.now)
        return ActionResult("ok", {"incident_id": doc["event"]["id"], "created": created})


class UpdateParams(Params):
    incident_id: str | None = None
    status: Literal["new", "acknowledged", "investigating", "contained", "closed"] | None = None
    assignee: str | None = Field(None, max_length=128)


class UpdateIncident(Action):
    name = "update_incident"
    Params = UpdateParams
    idempotent = True          # setting the same fields again changes nothing

    def run(self, ctx: ActionContext, params: UpdateParams) -> ActionResult:
        iid = _incident_id(ctx, params.incident_id)
        changes = params.model_dump(exclude={"incident_id"}, exclude_none=True)
        if not iid:
            return ActionResult("failed", {}, "no incident: open one first", retry=False,
                                message_zh="尚无安全事件：请先开立")
        try:
            incident_ops.update_incident(ctx.store, iid, changes, ctx.actor, ctx.now)
        except KeyError:
            return ActionResult("failed", {"incident_id": iid}, "incident not found",
                                message_zh="找不到该安全事件")
        return ActionResult("ok", {"incident_id": iid, "changes": changes})


class LevelParams(Params):
    level: Literal["I", "II", "III", "IV"]
    incident_id: str | None = None
    org_type: Literal["cii", "state_organ", "other"] = "other"


class SetEmergencyLevel(Action):
    name = "set_emergency_level"
    Params = LevelParams
    idempotent = True

    def run(self, ctx: ActionContext, params: LevelParams) -> ActionResult:
        iid = _incident_id(ctx, params.incident_id)
        if not iid:
            return ActionResult("failed", {}, "no incident: open one first", retry=False,
                                message_zh="尚无安全事件：请先开立")
        try:
            _, due = incident_ops.set_level(ctx.store, iid, params.level, ctx.actor, ctx.now,
                                            params.org_type)
        except KeyError:
            return ActionResult("failed", {"incident_id": iid}, "incident not found",
                                message_zh="找不到该安全事件")
        return ActionResult("ok", {"incident_id": iid, "level": params.level,
                                   "report_due": due})

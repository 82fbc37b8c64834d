"""Wait for a responder (not the requester) to approve or deny through the API.

The step parks the run (status `waiting`); `resume` is asked on every tick: a decision
recorded by `watchkeeper.store.runs.decide` ends the wait; past `expires_after` the request
is denied by expiry (recorded as a decision by `system:expiry`, first decision wins).
"""
from __future__ import annotations

from pydantic import Field

from playbooks.actions.base import Action, ActionContext, ActionResult, Params
from watchkeeper import timeutil
from watchkeeper.store import runs


class ApprovalParams(Params):
    reason: str = Field("", max_length=2000, description="what the responder is asked")
    expires_after: int | None = Field(None, ge=10, le=7 * 86_400,
                                      description="seconds; default playbooks."
                                                  "approval_expires_seconds")


class WaitForApproval(Action):
    name = "wait_for_approval"
    Params = ApprovalParams
    idempotent = True          # asking again changes nothing
    audited = False

    def run(self, ctx: ActionContext, params: ApprovalParams) -> ActionResult:
        seconds = params.expires_after or ctx.settings.approval_expires_seconds
        return ActionResult("waiting", {"requested_at": timeutil.format(ctx.now),
                                        "expires_at": timeutil.format(ctx.now + seconds),
                                        "requested_by": ctx.run.get("requested_by"),
                                        "reason": params.reason})

    def resume(self, ctx: ActionContext, params: ApprovalParams, waiting: dict) -> ActionResult:
        decision = runs.decision_for(ctx.store, ctx.run_id, ctx.step_id)
        if decision is None and ctx.now >= timeutil.parse(waiting["expires_at"]):
            run_doc = runs.get_run(ctx.store, ctx.run_id)
            try:
                runs.decide(ctx.store, run_doc, ctx.step_id, False, "system:expiry",
                            "approval request expired", ctx.now)
            except runs.DecisionRefused:
                pass            # a responder decided in the same instant: theirs stands
            decision = runs.decision_for(ctx.store, ctx.run_id, ctx.step_id)
        if decision is None:
            return ActionResult("waiting", waiting)
        output = {**waiting, "decision": decision["decision"], "approver": decision["by"],
                  "decided_at": decision["at"], "comment": decision.get("comment", "")}
        if decision["decision"] == "approved":
            return ActionResult("ok", output)
        return ActionResult("denied", output, f"denied by {decision['by']}",
                            message_zh=f"{decision['by']} 拒绝")

"""Add a comment to the run's alert (or incident); kept in the audit trail (its history)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from playbooks.actions import incident_ops
from playbooks.actions.base import Action, ActionContext, ActionResult, Params


class CommentParams(Params):
    text: str = Field(min_length=1, max_length=10_000)
    about: Literal["alert", "incident"] | None = Field(
        None, description="default: what the run is about (its trigger)")
    object_id: str | None = Field(None, description="default: the run's alert / incident")


class AddComment(Action):
    name = "add_comment"
    Params = CommentParams
    idempotent = False

    def run(self, ctx: ActionContext, params: CommentParams) -> ActionResult:
        object_id = params.object_id or (ctx.run.get("trigger") or {}).get("object_id")
        if not object_id:
            return ActionResult("failed", {}, "no alert or incident to comment on", retry=False,
                                message_zh="没有可评论的告警或安全事件")
        trigger_kind = (ctx.run.get("trigger") or {}).get("kind")
        about = params.about or ("incident" if trigger_kind == "incident" else "alert")
        record = incident_ops.add_comment(ctx.store, about, object_id, params.text,
                                          ctx.actor, ctx.now)
        return ActionResult("ok", {"object_id": object_id, "about": about,
                                   "audit_seq": (record or {}).get("watchkeeper", {})
                                   .get("audit", {}).get("seq")})

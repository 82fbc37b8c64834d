"""POST a JSON notice to a webhook; the `Idempotency-Key` header lets the receiver drop a
repeat (a step retried after a crash sends the same key)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pydantic import Field, HttpUrl

from playbooks.actions.base import Action, ActionContext, ActionResult, Params


class WebhookParams(Params):
    url: HttpUrl
    message: str = Field("", max_length=10_000)
    fields: dict[str, Any] = Field(default_factory=dict, description="extra JSON fields")


class NotifyWebhook(Action):
    name = "notify_webhook"
    Params = WebhookParams
    idempotent = True

    def run(self, ctx: ActionContext, params: WebhookParams) -> ActionResult:
        body = {"playbook": ctx.run.get("playbook"), "run_id": ctx.run_id, "step": ctx.step_id,
                "target": ctx.target, "message": params.message, **params.fields}
        request = urllib.request.Request(
            str(params.url), data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Idempotency-Key": ctx.key, "User-Agent": "watchkeeper-playbooks"})
        try:
            with urllib.request.urlopen(request, timeout=ctx.settings.webhook_timeout) as reply:
                status = reply.status
        except urllib.error.HTTPError as exc:
            return ActionResult("failed", {"status": exc.code}, f"webhook answered {exc.code}",
                                message_zh=f"Webhook 返回 {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            return ActionResult("failed", {}, f"webhook unreachable: {exc}",
                                message_zh=f"Webhook 无法访问：{exc}")
        return ActionResult("ok", {"status": status})

"""The action registry: one file per action, one registration line here."""
from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from playbooks.actions.base import Action, ActionContext, ActionResult
from playbooks.model import TEMPLATE

REGISTRY: dict[str, Action] = {}


def register(action: type[Action]) -> None:
    REGISTRY[action.name] = action()


def _register_shipped() -> None:
    from playbooks.actions import (add_comment, block_address, enrich, incidents,
                                   notify_email, notify_webhook, wait_for_approval)
    register(notify_webhook.NotifyWebhook)
    register(notify_email.NotifyEmail)
    register(block_address.BlockAddress)
    register(wait_for_approval.WaitForApproval)
    register(add_comment.AddComment)
    register(incidents.OpenIncident)
    register(incidents.UpdateIncident)
    register(incidents.SetEmergencyLevel)
    register(enrich.Enrich)


@dataclass(frozen=True)
class ParamProblem:
    loc: tuple
    message: str


def check_params(action: str, params: dict) -> list[ParamProblem]:
    """Parameter errors knowable before a run: unknown keys, missing ones, bad literal values.
    A value with a `{{ template }}` is only known at run time; it is checked then."""
    model = REGISTRY[action].Params
    templated = {k for k, v in params.items() if isinstance(v, str) and TEMPLATE.search(v)}
    try:
        model.model_validate({k: v for k, v in params.items() if k not in templated})
    except ValidationError as exc:
        return [ParamProblem(tuple(e["loc"]), f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                for e in exc.errors()
                if not (e["type"] == "missing" and e["loc"][:1] and e["loc"][0] in templated)]
    return []


_register_shipped()

__all__ = ["REGISTRY", "Action", "ActionContext", "ActionResult", "check_params", "register"]

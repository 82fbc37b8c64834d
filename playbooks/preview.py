"""What a run waiting for approval would do once approved: its later steps with their
parameters rendered from what the run knows now (shown to the responder who decides).

A preview, not a promise: a later step's `if` is evaluated when it is reached, and
parameters that read a step not run yet may render differently then (those keep their
template text here).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbooks import template
from playbooks.expr import ExpressionError
from playbooks.model import Playbook

MAX_TEXT = 500          # a rendered value longer than this is cut (it is for reading)


def steps_after(playbook: Playbook, index: int, context: Mapping) -> list[dict[str, Any]]:
    return [{"id": step.id, "action": step.action, "if": step.if_,
             "with": _rendered(step.with_, context)} for step in playbook.steps[index + 1:]]


def _rendered(params: dict, context: Mapping) -> dict:
    shown = {}
    for name, value in params.items():
        try:
            value = template.render(value, context)
        except (ExpressionError, TypeError, KeyError, ValueError):
            pass                            # keeps the template text
        text = value if isinstance(value, (int, float, bool)) or value is None else str(value)
        shown[name] = text[:MAX_TEXT] if isinstance(text, str) else text
    return shown

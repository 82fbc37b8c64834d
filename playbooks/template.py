"""`{{ expression }}` in step parameters, filled from the run's context at run time.

A value that is exactly one template keeps the expression's type (`"{{ inputs.seconds }}"`
gives an int); a template inside text is replaced by its string form (None -> "").
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbooks.expr import compiled
from playbooks.model import TEMPLATE


def render(value: Any, context: Mapping) -> Any:
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = TEMPLATE.fullmatch(value.strip())
    if whole:
        return compiled(whole.group(1)).evaluate(context)
    return TEMPLATE.sub(lambda m: _text(compiled(m.group(1)).evaluate(context)), value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)

"""What a playbook file says, as typed models (docs/playbooks.md).

Tracecat / Elastic Workflows in spirit: a trigger, inputs with defaults, and steps that each
name an action from the registry, with an `if`, a timeout, retries with backoff and what to do
when they fail (`stop`, `continue`, `escalate`).
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from playbooks.expr import Expression, ExpressionError
from watchkeeper.taxonomy import CATEGORY_INFO

NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TEMPLATE = re.compile(r"\{\{\s*(.+?)\s*\}\}")


def _expression(value: str | None) -> str | None:
    if value is not None:
        try:
            Expression(value)
        except ExpressionError as exc:
            raise ValueError(str(exc)) from None
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertTrigger(Strict):
    """Every condition given must hold (an empty trigger matches every alert)."""
    category: list[str] = Field(default_factory=list, description="any of these categories")
    severity_at_least: int | None = Field(None, ge=1, le=4)
    detector: list[str] = Field(default_factory=list)
    site: str | None = Field(None, description="this site or any site below it")
    where: str | None = Field(None, description="expression over the alert's fields")

    @field_validator("category")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(CATEGORY_INFO))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {sorted(CATEGORY_INFO)}")
        return value

    _where = field_validator("where")(classmethod(lambda cls, v: _expression(v)))


LEVELS = ("I", "II", "III", "IV")          # 特别重大 … 一般: I is the gravest


class IncidentTrigger(Strict):
    """An incident graded at least `level_at_least` (III = III, II or I), and the rest."""
    level_at_least: Literal["I", "II", "III", "IV"] | None = None
    category: list[str] = Field(default_factory=list, description="any of its categories")
    site: str | None = None
    where: str | None = Field(None, description="expression over the incident's fields")

    _category = field_validator("category")(classmethod(
        lambda cls, v: AlertTrigger._known.__func__(cls, v)))
    _where = field_validator("where")(classmethod(lambda cls, v: _expression(v)))

    def levels(self) -> list[str]:
        if self.level_at_least is None:
            return list(LEVELS)
        return list(LEVELS[:LEVELS.index(self.level_at_least) + 1])


class Trigger(Strict):
    alert: AlertTrigger | None = None
    incident: IncidentTrigger | None = Field(
        None, description="incidents are looked for in the store every "
                          "playbooks.incident_poll_seconds; one run per incident and level")
    manual: bool = Field(True, description="may also be started by hand from the API")


class Retries(Strict):
    attempts: int = Field(1, ge=1, le=10, description="tries in all, the first included")
    backoff: float = Field(2.0, ge=0, le=3600, description="seconds before the 2nd try")
    factor: float = Field(2.0, ge=1, le=10, description="each later wait is this much longer")
    max_backoff: float = Field(300.0, ge=0, le=86_400)

    def delay(self, attempt: int) -> float:
        """Wait before try number `attempt + 1` (attempt counts from 1)."""
        return min(self.max_backoff, self.backoff * self.factor ** (attempt - 1))


class Step(Strict):
    id: str = Field(pattern=NAME)
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    if_: str | None = Field(None, alias="if")
    timeout: float = Field(30.0, gt=0, le=86_400, description="seconds for one try")
    retries: Retries = Field(default_factory=Retries)
    on_failure: Literal["stop", "continue", "escalate"] = "stop"

    _if = field_validator("if_")(classmethod(lambda cls, v: _expression(v)))

    @field_validator("with_")
    @classmethod
    def _templates(cls, value: dict) -> dict:
        for text in _strings(value):
            for source in TEMPLATE.findall(text):
                _expression(source)
        return value


class Concurrency(Strict):
    per_playbook: int = Field(20, ge=1, le=10_000, description="runs active at once")
    per_target: int = Field(1, ge=1, le=100, description="active runs per target address")


class Playbook(Strict):
    name: str = Field(pattern=NAME)
    version: int = Field(ge=1)
    description: str = ""
    trigger: Trigger = Field(default_factory=Trigger)
    inputs: dict[str, Any] = Field(default_factory=dict, description="defaults; a manual "
                                                                     "start may override")
    target: str = Field("source.ip", description="field of the alert naming the run's target")
    concurrency: Concurrency = Field(default_factory=Concurrency)
    steps: list[Step] = Field(min_length=1)

    def uses(self, name: str) -> bool:
        """Does any step's `if` or template mention `name` (costly context is made lazily)?"""
        return any(name in (step.if_ or "") or any(name in text for text in _strings(step.with_))
                   for step in self.steps)

    @model_validator(mode="after")
    def _unique_steps(self) -> Playbook:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return self


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)

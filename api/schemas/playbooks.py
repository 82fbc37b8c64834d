"""Playbook run schemas: Public (a run with its attempts and decisions), List, Decision,
Create (a run started by hand)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import EcsDocument


class RunPublic(EcsDocument):
    """A run as stored: watchkeeper.run.{playbook, status, target, steps, requested_by, …}."""
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    watchkeeper: dict[str, Any]


class RunDetail(BaseModel):
    run: RunPublic
    attempts: list[dict[str, Any]] = Field(description="Every step attempt: inputs, output, "
                                                       "outcome, started_at, ended_at")
    decisions: list[dict[str, Any]] = Field(description="Approvals and denials: by, at, comment")


class RunList(BaseModel):
    items: list[RunPublic]
    total: int
    next_cursor: str | None


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000)
    step: str | None = Field(None, max_length=64, description="default: the step the run "
                                                              "waits on")


class DecisionPublic(BaseModel):
    run_id: str
    step: str
    decision: str
    by: str
    at: str
    comment: str


class RunCreate(BaseModel):
    """Start a playbook by hand on an alert; the playbook worker runs it."""
    model_config = ConfigDict(extra="forbid")
    playbook: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    alert_id: str = Field(min_length=1, max_length=128)
    inputs: dict[str, Any] = Field(default_factory=dict, description="override the defaults")

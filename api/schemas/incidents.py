"""Incident schemas: Public, List, Update (status/assignee), LevelChange, ReportRecord,
LinkRequest, Escalation, Comment, Timeline and ResponseTimes (docs/api-incidents.md)."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from api.params import parse_instant
from api.schemas.common import EcsDocument
from watchkeeper.incidents import Level, Status

Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]
Comment = Annotated[str, Field(max_length=2000)]


class IncidentPublic(EcsDocument):
    """Alerts about one actor within a day. `watchkeeper.incident` holds alert ids, categories
    in kill-chain order, GB/T 20986 code, the emergency level (I–IV, `level_name`,
    `warning_colour`, `level_suggested` by the correlator), status and its times, and the
    reporting clock: `org_type`, `discovered_at`, `graded_at`, `report_required`,
    `report_due`, `reported_at`, `reported_to`, `overdue`."""
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    message: str | None = None
    watchkeeper: dict[str, Any] | None = None


class IncidentList(BaseModel):
    items: list[IncidentPublic]
    total: int = Field(description="Incidents matching the filters, across all pages")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end")


class IncidentUpdate(BaseModel):
    """Status (its timestamps follow) and assignee; `comment` goes to the audit trail.
    The level is not here: PUT .../level (responders only)."""
    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    assignee: str | None = Field(default=None, min_length=1, max_length=128)
    comment: Comment = ""

    @model_validator(mode="after")
    def _something_to_do(self) -> "IncidentUpdate":
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if not self.model_fields_set & {"status", "assignee"}:
            raise ValueError("give at least one of status, assignee")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(include=self.model_fields_set & {"status", "assignee"})


class LevelChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Level = Field(description="I 特别重大 · II 重大 · III 较大 · IV 一般")
    reason: Reason


class ReportRecord(BaseModel):
    """"Reported to X at T": stops the reporting clock."""
    model_config = ConfigDict(extra="forbid")
    reported_to: str = Field(min_length=1, max_length=200, pattern=r"\S",
                             description="e.g. 省委网信办, 公安机关, 12387")
    reported_at: Annotated[float, BeforeValidator(parse_instant)] = Field(
        description="ISO-8601 with a zone, or epoch seconds; not in the future")
    comment: Comment = ""


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=500)
    reason: Comment = ""


class LinkResult(BaseModel):
    incident: IncidentPublic
    changed: list[str] = Field(description="Alert ids linked or unlinked")
    missing: list[str] = Field(description="Ids not found (or not visible to you), or not "
                                           "in this incident")


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=4000, pattern=r"\S")


class TimelineEntryPublic(BaseModel):
    at: str = Field(description="UTC ISO-8601")
    kind: str = Field(description="created, alert, level, update, report, link, unlink, "
                                  "escalate, comment, or another audited action")
    actor: str | None
    summary: str
    object_id: str | None = None
    changes: dict[str, Any] | None = None
    summary_zh: str | None = Field(None, description="The summary in zh-CN where it is ours "
                                   "(opening, alerts, playbook runs); a reason given by a "
                                   "person is only in `summary`")


class Timeline(BaseModel):
    incident_id: str
    items: list[TimelineEntryPublic]


class ResponseTimesRow(BaseModel):
    site: str = Field(description='Site id; "/" site-less; "*" all sites')
    level: str = Field(description='Effective level; "*" all levels')
    incidents: int
    acknowledged: int
    closed: int
    mtta_seconds: float | None = Field(description="Mean time from discovery to acknowledged")
    mttr_seconds: float | None = Field(description="Mean time from discovery to closed")


class ResponseTimes(BaseModel):
    items: list[ResponseTimesRow]

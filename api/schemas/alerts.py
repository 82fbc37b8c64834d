"""Alert schemas: Public (one stored alert), List (a page), Update (analyst's change), Evidence."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.params import AlertStatus, Verdict
from api.schemas.common import EcsDocument
from watchkeeper.store.triage import MAX_TAGS, AlertChange


class AlertPublic(EcsDocument):
    """An ECS alert: rule.*, event.severity, message, related.ip, watchkeeper.alert.*."""
    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra={
        "example": {
            "@timestamp": "2026-01-31T08:00:00.000000Z",
            "event": {"id": "3f2a…", "kind": "alert", "severity": 3, "risk_score": 62.5},
            "rule": {"id": "scan.horizontal", "name": "Horizontal port scan"},
            "message": "10.0.0.5 probed 120 hosts on 22/tcp",
            "related": {"ip": ["10.0.0.5"]},
            "watchkeeper": {"alert": {"category": "scan", "status": "new", "evidence": []}},
        }})

    message: str | None = None
    rule: dict[str, Any] | None = None
    watchkeeper: dict[str, Any] | None = None


class AlertList(BaseModel):
    items: list[AlertPublic]
    total: int = Field(description="Alerts matching the filters, across all pages")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end")


Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


class AlertUpdate(BaseModel):
    """An analyst's change (docs/api-triage.md): `status` moves along the workflow (closing
    needs a `verdict`), `assignee: null` unassigns, tags are added and removed, `comment` is
    the reason kept in the audit record (comments to read: POST …/comments)."""
    model_config = ConfigDict(extra="forbid")

    status: AlertStatus | None = None
    verdict: Verdict | None = None
    assignee: str | None = Field(default=None, min_length=1, max_length=128)
    tags_add: list[Tag] = Field(default=[], max_length=MAX_TAGS)
    tags_remove: list[Tag] = Field(default=[], max_length=MAX_TAGS)
    comment: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _something_to_do(self) -> "AlertUpdate":
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        if "verdict" in self.model_fields_set and self.verdict is None:
            raise ValueError("verdict cannot be null (reopening clears it)")
        if not self.model_fields_set & {"status", "verdict", "assignee", "tags_add",
                                        "tags_remove"}:
            raise ValueError("give at least one of status, verdict, assignee, tags_add, "
                             "tags_remove (`comment` is the reason for a change; to leave a "
                             "note, POST /alerts/{id}/comments)")
        self.change()          # the workflow's own input checks, as field errors
        return self

    def change(self) -> AlertChange:
        return AlertChange(status=self.status, verdict=self.verdict,
                           set_assignee="assignee" in self.model_fields_set,
                           assignee=self.assignee, tags_add=tuple(self.tags_add),
                           tags_remove=tuple(self.tags_remove), comment=self.comment)


class AlertEvidence(BaseModel):
    alert_id: str
    items: list[EcsDocument] = Field(description="The events behind the alert, in evidence order")
    missing: list[str] = Field(description="Evidence ids no longer in the store (e.g. past "
                                           "retention)")

"""Triage schemas: comments (Create/Public/List), history, bulk changes (docs/api-triage.md)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.params import AlertStatus, Category, Instant, IpAddress, Severity, Verdict
from api.schemas.alerts import AlertUpdate
from api.schemas.common import EcsDocument
from watchkeeper.store.comments import MAX_TEXT

Name = Annotated[str, Field(min_length=1, max_length=128)]
MAX_BULK_IDS = 1000


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT, pattern=r"\S",
                      description="Append-only: a comment is never edited or deleted")


class CommentPublic(EcsDocument):
    """`message` (the text), `user.name` (the author), `@timestamp` (when, UTC),
    `watchkeeper.comment` (object_kind, object_id)."""
    message: str
    user: dict[str, Any]


class CommentList(BaseModel):
    items: list[CommentPublic] = Field(description="Oldest first")
    total: int
    next_cursor: str | None


class HistoryEntry(BaseModel):
    at: str = Field(description="When, ISO-8601 UTC")
    actor: str = Field(description="Who: user name or key")
    action: str = Field(description="alert.update, alert.close, alert.reopen, "
                                    "alert.bulk_update, alert.comment")
    message: str = Field(description="The reason given, or the comment's text")
    changes: dict[str, dict[str, Any]] = Field(description="field -> {from, to}")
    seq: int | None = Field(None, description="The audit record's place in the hash chain")


class AlertHistory(BaseModel):
    alert_id: str
    items: list[HistoryEntry] = Field(description="Oldest first")
    total: int
    next_cursor: str | None


class AlertFilter(BaseModel):
    """The search's filters (GET /alerts), as a body: every given one must match."""
    model_config = ConfigDict(extra="forbid")

    since: Instant = None
    until: Instant = None
    category: list[Category] = Field(default=[], max_length=50)
    severity: list[Severity] = Field(default=[], max_length=4)
    detector: list[Name] = Field(default=[], max_length=50)
    status: list[AlertStatus] = Field(default=[], max_length=4)
    verdict: list[Verdict] = Field(default=[], max_length=5)
    site: list[Name] = Field(default=[], max_length=100)
    tag: list[Name] = Field(default=[], max_length=50)
    assignee: list[Name] = Field(default=[], max_length=50)
    ip: IpAddress = None
    q: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _range(self) -> "AlertFilter":
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be later than since")
        return self


class BulkChange(BaseModel):
    """Either `ids` or `query` (the search's filters; `{}` = every alert you can see)."""
    model_config = ConfigDict(extra="forbid")

    ids: list[Name] | None = Field(default=None, min_length=1, max_length=MAX_BULK_IDS)
    query: AlertFilter | None = None
    change: AlertUpdate

    @model_validator(mode="after")
    def _one_target(self) -> "BulkChange":
        if (self.ids is None) == (self.query is None):
            raise ValueError("give either ids or query, not both, not neither")
        return self


class Refusal(BaseModel):
    id: str
    reason: str


class BulkResult(BaseModel):
    matched: int = Field(description="Alerts named or matched that you can see")
    changed: int = Field(description="Alerts actually changed (already-there ones are not)")
    changed_ids: list[str]
    refused: list[Refusal] = Field(description="Not changed, and why: unknown id, transition")
    target: Literal["ids", "query"]

"""Pieces shared by several resources."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EcsDocument(BaseModel):
    """A stored ECS document returned as stored: every field kept, `@timestamp` included."""
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    timestamp: str = Field(alias="@timestamp", description="Event time, ISO-8601 UTC")
    event: dict[str, Any] = Field(description="ECS event.* (id, kind, dataset, ...)")


class BucketPublic(BaseModel):
    key: str | int | float
    count: int


class FieldError(BaseModel):
    field: str = Field(description="Dotted location: query.since, body.password …")
    message: str
    type: str
    input: Any = None


class Problem(BaseModel):
    """RFC 9457 problem details, served as application/problem+json."""
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = Field(None, description="422: one entry per bad field")

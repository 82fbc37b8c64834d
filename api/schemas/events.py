"""Event schemas: Public (one stored ECS event) and List (a page)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import EcsDocument


class EventPublic(EcsDocument):
    """An ECS event (flow, DNS, HTTP, TLS, log) as stored."""


class EventList(BaseModel):
    items: list[EventPublic]
    total: int = Field(description="Events matching the filters, across all pages")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end")

"""Incident schemas: Public (one incident with its alerts' summary) and List (a page)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import EcsDocument


class IncidentPublic(EcsDocument):
    """Alerts about one actor within a day: `watchkeeper.incident` holds alert ids,
    categories in kill-chain order, worst severity and risk, GB/T 20986 code and level."""


class IncidentList(BaseModel):
    items: list[IncidentPublic]
    total: int = Field(description="Incidents matching the filters, across all pages")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at "
                                                "the end")

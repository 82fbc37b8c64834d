"""Report schemas: Public (a stored report's metadata, without its bytes) and List (a page)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportCreate(BaseModel):
    """Generate a report now (it is stored and listed like a scheduled one)."""
    model_config = ConfigDict(extra="forbid")
    type: Literal["daily", "weekly", "monthly", "incident"]
    period: str | None = Field(None, max_length=16, description="2026-11 (monthly), 2026-W45 "
                               "(weekly), 2026-11-05 (daily); not for incident reports")
    site: str | None = Field(None, min_length=1, max_length=64,
                             description="Root of the subtree covered; default: your own site")
    incident_id: str | None = Field(None, min_length=1, max_length=128)
    lang: Literal["zh-CN", "en"] | None = None


class DeliveryPublic(BaseModel):
    channel: str = Field(description="email | webhook")
    target: str
    ok: bool
    error: str = ""
    attempt: int = 1
    at: float = Field(description="epoch seconds, UTC")


class ReportPublic(BaseModel):
    id: str = Field(description="Report id, printed on every page of the PDF")
    type: str | None = Field(description="daily | weekly | monthly | incident")
    period: str | None = Field(description="2026-11, 2026-W45, 2026-11-05 or the incident id")
    period_start: str | None = None
    period_end: str | None = None
    site: str | None = Field(description="Root of the site subtree covered; null = all sites")
    generated_at: str | None = None
    generated_by: str | None = None
    schedule: str | None = None
    incident_id: str | None = None
    lang: str | None = None
    size: int | None = Field(None, description="PDF size in bytes")
    sha256: str | None = Field(None, description="SHA-256 of the PDF (hex)")
    deliveries: list[DeliveryPublic] = Field(default_factory=list)


class ReportList(BaseModel):
    items: list[ReportPublic]
    total: int
    next_cursor: str | None

"""Liveness and store reachability."""
from __future__ import annotations

from pydantic import BaseModel


class HealthPublic(BaseModel):
    status: str
    store: str
    alerts: int | None = None
    reason: str | None = None

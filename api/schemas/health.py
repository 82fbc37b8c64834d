"""Liveness, store reachability and the consuming stages of this process."""
from __future__ import annotations

from pydantic import BaseModel, Field


class StagePublic(BaseModel):
    """One consuming stage (`run` only: a `serve` process has none)."""
    name: str = Field(description="index, correlate, detect, detect-<entity>")
    state: str = Field(description="ok | stalled | rejoining")
    lag: int | None = Field(None, description="messages owed; null until partitions are assigned")
    last_progress: str | None = Field(None, description="when it last consumed records (UTC)")
    last_step: str | None = Field(None, description="when a step last completed (UTC)")
    restarts: int = Field(0, description="rejoins the liveness watchdog asked for")


class HealthPublic(BaseModel):
    status: str
    store: str
    alerts: int | None = None
    reason: str | None = None
    stages: list[StagePublic] | None = None

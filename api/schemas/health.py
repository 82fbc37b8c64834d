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
    unowned_partitions: int | None = Field(
        None, description="partitions of its topics that no member of its consumer group holds "
                          "(asked of the group's coordinator every 10 s; held by nobody for the "
                          "stall time, they make the stage rejoin); null until known")
    left_out: bool | None = Field(
        None, description="true while its own member holds no partition though its group has "
                          "fewer members than partitions (outside the group: for the stall "
                          "time, the stage rejoins); null until known")


class CaptureDropsPublic(BaseModel):
    """A packet capture losing frames in the kernel now (its detections see part of it)."""
    observer: str
    collector: str = Field(description="capture:<interface>")
    recent_drops: int = Field(description="kernel drops between its two newest status reports")


class HealthPublic(BaseModel):
    status: str = Field(description="ok | degraded (a stage stalled: 503; a capture dropping "
                                    "packets: 200) | unavailable (503)")
    store: str
    alerts: int | None = None
    reason: str | None = None
    stages: list[StagePublic] | None = None
    capture: list[CaptureDropsPublic] | None = Field(
        None, description="captures dropping packets now (status degraded)")

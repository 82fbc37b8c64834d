"""Threat posture for the command-centre screen (docs/api-posture.md)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import BucketPublic
from api.schemas.incidents import IncidentPublic

Colour = Literal["red", "orange", "yellow", "blue"]


class SitePosturePublic(BaseModel):
    site: str = Field(description="Inventory site id")
    name: str
    parent: str | None = Field(description="Parent site id; null for a top-level site")
    tier: str = Field(description="region | city | county (tier-N below that)")
    depth: int = Field(description="0 = top level")
    org_type: Literal["cii", "state_organ", "other"] = Field(
        description="critical information infrastructure, state organ, other")
    own_score: float = Field(description="Open alerts labelled with this site only")
    score: float = Field(description="This site and everything below it")
    open_alerts: int = Field(description="Open alerts of this site and everything below it")
    level: Colour


class TrendPointPublic(BaseModel):
    start: int = Field(description="Interval start, epoch seconds")
    score: float
    level: Colour
    raised: int = Field(description="Alerts raised in this interval (any status now)")


class Trend(BaseModel):
    interval: int = Field(description="Seconds per point")
    points: list[TrendPointPublic]


class SeriesBucket(BaseModel):
    start: int = Field(description="Interval start, epoch seconds")
    key: str | int
    count: int


class Series(BaseModel):
    interval: int
    buckets: list[SeriesBucket] = Field(description="Empty intervals omitted")


class CollectorHealthPublic(BaseModel):
    observer: str
    collector: str
    site: str | None
    last_seen: str = Field(description="Time of its newest status report, ISO-8601 UTC")
    silent: bool = Field(description="No status report for more than 60 s")
    events_per_second: float
    kernel_drops: int
    dropped: int
    dead_letters: int
    counters: dict[str, int] = Field(description="Cumulative counters since it started")
    dropping: bool = Field(False, description="Kernel drops grew between its two newest reports")
    recent_drops: int = Field(0, description="Those drops")
    stopped: bool = Field(False, description="Its newest report is the last of a clean stop "
                                             "(so no warning when silent)")


class PostureWarningPublic(BaseModel):
    """Detection health: why the picture may be incomplete (docs/detection-health.md)."""
    kind: Literal["kernel_drops", "collector_silent"]
    observer: str
    collector: str
    site: str | None
    message: str = Field(description="For people, zh-CN")


class Tops(BaseModel):
    sources: list[BucketPublic] = Field(description="Most frequent source.ip, last 24 h")
    targets: list[BucketPublic] = Field(description="Most frequent destination.ip, last 24 h")
    sites: list[BucketPublic] = Field(description="Sites with the most alerts, last 24 h")


class Posture(BaseModel):
    generated_at: str = Field(description="The `now` every window ends at, ISO-8601 UTC")
    level: Colour = Field(description="Overall warning colour of the caller's subtree")
    score: float
    open_alerts: int
    scope: str = Field(description="The site this answer covers: the caller's (`/` = "
                                   "everything) or the `site` asked for")
    sites: list[SitePosturePublic] = Field(description="Parents before children")
    trend_24h: Trend
    trend_30d: Trend
    by_severity: Series = Field(description="Alerts per hour by event.severity, last 24 h")
    by_category: Series = Field(description="Alerts per hour by category, last 24 h")
    top: Tops
    collectors: list[CollectorHealthPublic]
    warnings: list[PostureWarningPublic] = Field(
        default_factory=list, description="Captures dropping packets, silent collectors: "
                                          "detections fed by them see part of the traffic")
    deadletters_by_stage: dict[str, int] | None = Field(
        description="Dead letters of the last 24 h per stage; root principals only (null "
                    "otherwise: dead letters carry no site)")
    open_incidents: list[IncidentPublic] = Field(
        default_factory=list, description="Open incidents (every status but closed), newest "
        "first, at most 100, presented as `GET /incidents` presents them: the wall screen's "
        "board, for roles that may not search incidents too")

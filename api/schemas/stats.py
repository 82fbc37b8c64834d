"""Alert statistics for the command-centre screen and reports."""
from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import BucketPublic


class Histogram(BaseModel):
    interval: int = Field(description="Bucket width in seconds")
    buckets: list[BucketPublic] = Field(description="key = bucket start (epoch seconds); empty "
                                                    "buckets omitted")


class AlertStats(BaseModel):
    total: int
    by_category: list[BucketPublic]
    by_severity: list[BucketPublic]
    by_status: list[BucketPublic]
    histogram: Histogram

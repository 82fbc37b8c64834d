"""Alert statistics: counts by category, severity and status, and counts over time."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query as Param

from api.errors import store_errors
from api.focus import FOCUS_404, FocusDep
from api.security import SCREEN_ROLES, allow
from api.params import TimeRangeDep
from api.schemas.common import BucketPublic
from api.schemas.stats import AlertStats, Histogram
from watchkeeper.schema import ALERT_STATUSES, CATEGORIES, SEVERITY_NAMES
from watchkeeper.store.base import Bucket, Query

router = APIRouter(prefix="/stats", tags=["stats"])

Interval = Annotated[int, Param(ge=60, le=31 * 86400, description="Histogram bucket width, "
                                                                  "seconds")]


def _buckets(buckets: list[Bucket]) -> list[BucketPublic]:
    return [BucketPublic(key=b.key, count=b.count) for b in buckets]


@router.get("/alerts", response_model=AlertStats, summary="Alert counts for the screen",
            responses=FOCUS_404, dependencies=[allow(*SCREEN_ROLES)])
def alert_stats(focus: FocusDep, span: TimeRangeDep, interval: Interval = 3600):
    store = focus.store
    query = Query(since=span.since, until=span.until, limit=1)
    with store_errors():
        total = store.search("alerts", query).total
        by_category = store.terms("alerts", "watchkeeper.alert.category", query, len(CATEGORIES))
        by_severity = store.terms("alerts", "event.severity", query, len(SEVERITY_NAMES))
        by_status = store.terms("alerts", "watchkeeper.alert.status", query, len(ALERT_STATUSES))
        histogram = store.date_histogram("alerts", interval, query)
    return AlertStats(total=total, by_category=_buckets(by_category),
                      by_severity=_buckets(by_severity), by_status=_buckets(by_status),
                      histogram=Histogram(interval=interval, buckets=_buckets(histogram)))

"""Alert statistics: counts by category, severity and status, and counts over time."""
from __future__ import annotations

import time
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
from watchkeeper.store.base import Bucket, Group, Query

router = APIRouter(prefix="/stats", tags=["stats"])

Interval = Annotated[int, Param(ge=60, le=31 * 86400, description="Histogram bucket width, "
                                                                  "seconds")]


def _buckets(buckets: list[Bucket]) -> list[BucketPublic]:
    return [BucketPublic(key=b.key, count=b.count) for b in buckets]


# Up to this many intervals the histogram comes with the counts in one store request (as
# status groups per interval: ~6 statuses x 5,000 stays under Elasticsearch's default
# search.max_buckets 65,536); a longer or open-ended range asks date_histogram separately.
MAX_SUMMARISED_INTERVALS = 5_000


@router.get("/alerts", response_model=AlertStats, summary="Alert counts for the screen",
            responses=FOCUS_404, dependencies=[allow(*SCREEN_ROLES)])
def alert_stats(focus: FocusDep, span: TimeRangeDep, interval: Interval = 3600):
    query = Query(since=span.since, until=span.until, limit=1)
    one_request = _intervals(span, interval) <= MAX_SUMMARISED_INTERVALS
    series = {"per_status": ("watchkeeper.alert.status", interval)} if one_request else {}
    with store_errors():     # ES: one search; SQLite: one scan (+ the histogram if too long)
        got = focus.store.summarise("alerts", query, terms={
            "by_category": ("watchkeeper.alert.category", len(CATEGORIES)),
            "by_severity": ("event.severity", len(SEVERITY_NAMES)),
            "by_status": ("watchkeeper.alert.status", len(ALERT_STATUSES))}, series=series)
        histogram = (_per_interval(got["per_status"]) if one_request
                     else focus.store.date_histogram("alerts", interval, query))
    return AlertStats(total=sum(b.count for b in histogram),   # every alert is in one bucket
                      by_category=_buckets(got["by_category"]),
                      by_severity=_buckets(got["by_severity"]),
                      by_status=_buckets(got["by_status"]),
                      histogram=Histogram(interval=interval, buckets=_buckets(histogram)))


def _intervals(span, interval: int) -> float:
    if span.since is None:
        return float("inf")
    until = span.until if span.until is not None else time.time()
    return (until - span.since) / interval + 1

def _per_interval(groups: list[Group]) -> list[Bucket]:
    """Counts per interval start, as date_histogram: every document is in exactly one status
    group (a missing status is a group too), so the sums are the interval counts and their
    total the number of matching alerts."""
    counts: dict[int, int] = {}
    for group in groups:
        counts[group.start] = counts.get(group.start, 0) + group.count
    return [Bucket(start, n) for start, n in sorted(counts.items())]

"""Threat posture of the caller's site subtree, for the command-centre screen."""
from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from api.deps import ClockDep, RawStoreDep, SiteTreeDep
from api.errors import store_errors
from api.focus import FOCUS_404, FocusDep
from api.schemas.common import BucketPublic
from api.schemas.posture import Posture, Series, Tops, Trend
from api.security import SCREEN_ROLES, allow
from watchkeeper import posture, timeutil
from watchkeeper.collector_health import collector_health, deadletters_by_stage
from watchkeeper.store.base import Query

router = APIRouter(prefix="/posture", tags=["posture"])
DAY = 86400
MONTH_CACHE_SECONDS = 300


@router.get("", response_model=Posture, summary="Threat level, per site and tier, trends, "
            "tops and collector health", responses=FOCUS_404,
            dependencies=[allow(*SCREEN_ROLES)])
def read_posture(request: Request, focus: FocusDep, raw: RawStoreDep, tree: SiteTreeDep,
                 now: ClockDep):
    store, scope = focus.store, focus.scope
    day = Query(since=now - DAY, until=now + 1, limit=1)
    with store_errors():
        whole = posture.overall(store, tree, store.sites, now)
        body = Posture(
            generated_at=timeutil.format(now), level=whole.level, score=whole.score,
            open_alerts=whole.open_alerts, scope=scope,
            sites=[asdict(s) for s in whole.sites],
            trend_24h=_trend(store, now, DAY, 3600),
            trend_30d=_month(request, store, now),
            by_severity=_series(store, "event.severity", day),
            by_category=_series(store, "watchkeeper.alert.category", day),
            top=Tops(sources=_top(store, "source.ip", day),
                     targets=_top(store, "destination.ip", day),
                     sites=_top(store, "labels.site", day)),
            collectors=[asdict(c) for c in collector_health(store, now)],
            deadletters_by_stage=deadletters_by_stage(raw, now) if store.sites is None
            else None)
    return body


def _trend(store, now: float, span: int, interval: int) -> Trend:
    return Trend(interval=interval,
                 points=[asdict(p) for p in posture.trend(store, now, span, interval)])


def _month(request: Request, store, now: float) -> Trend:
    """The 30-day trend, kept MONTH_CACHE_SECONDS per scope: its daily points hardly move,
    and it is the dearest part of the answer (every alert of the month is grouped)."""
    cache = getattr(request.app.state, "posture_month_cache", None)
    if cache is None:
        cache = request.app.state.posture_month_cache = {}
    key = tuple(store.sites) if store.sites is not None else None
    cached = cache.get(key)
    if cached and cached[0] <= now < cached[0] + MONTH_CACHE_SECONDS:
        return cached[1]
    trend = _trend(store, now, 30 * DAY, DAY)
    if len(cache) > 1000:            # one entry per scope in use: a bound, not an LRU
        cache.clear()
    cache[key] = (now, trend)
    return trend


def _series(store, field_name: str, query: Query) -> Series:
    groups = store.group_counts("alerts", [field_name], query, 3600)
    return Series(interval=3600, buckets=posture.series(groups))


def _top(store, field_name: str, query: Query) -> list[BucketPublic]:
    return [BucketPublic(key=b.key, count=b.count)
            for b in store.terms("alerts", field_name, query, 10)]

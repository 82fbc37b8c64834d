"""Threat posture of the caller's site subtree, for the command-centre screen."""
from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Query as Param

from api.deps import ClockDep, CurrentPrincipal, RawStoreDep, SiteTreeDep, StoreDep
from api.errors import store_errors
from api.schemas.common import BucketPublic
from api.schemas.posture import Posture, Series, Tops, Trend
from api.security import SCREEN_ROLES, allow
from watchkeeper import posture, timeutil
from watchkeeper.collector_health import collector_health, deadletters_by_stage, \
    posture_warnings
from watchkeeper.store.base import Query
from watchkeeper.store.scoped import ScopedStore, subtree

router = APIRouter(prefix="/posture", tags=["posture"])
DAY = 86400
MONTH_CACHE_SECONDS = 300


FocusSite = Annotated[str | None, Param(max_length=64, description="Focus on this site's "
                                      "subtree (within yours): a tile of the map, clicked")]


@router.get("", response_model=Posture, summary="Threat level, per site and tier, trends, "
            "tops and collector health", responses={404: {"description": "No such site in "
                                                                       "your subtree"}},
            dependencies=[allow(*SCREEN_ROLES)])
def read_posture(request: Request, store: StoreDep, raw: RawStoreDep, tree: SiteTreeDep,
                 principal: CurrentPrincipal, now: ClockDep, site: FocusSite = None):
    scope = principal.site
    if site is not None and site != principal.site:
        if site not in tree or (store.sites is not None and site not in store.sites):
            raise HTTPException(404, f"no site {site!r} in your subtree")
        parents = {sid: node.parent for sid, node in tree.items()}
        store, scope = ScopedStore(raw, subtree(parents, site)), site
    day = Query(since=now - DAY, until=now + 1, limit=1)
    with store_errors():
        collectors = collector_health(store, now)
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
            collectors=[asdict(c) for c in collectors],
            warnings=posture_warnings(collectors),
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

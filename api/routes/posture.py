"""Threat posture of the caller's site subtree, for the command-centre screen."""
from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from fastapi import APIRouter, Request

from api.deps import ClockDep, IncidentPolicyDep, RawStoreDep, SiteTreeDep
from api.errors import store_errors
from api.focus import FOCUS_404, FocusDep
from api.schemas.common import BucketPublic
from api.schemas.posture import Posture, Series, Tops, Trend
from api.security import SCREEN_ROLES, allow
from watchkeeper import posture, timeutil
from watchkeeper.collector_health import collector_health, deadletters_by_stage, \
    posture_warnings
from watchkeeper.incidents import STATUSES
from watchkeeper.store.base import Query

router = APIRouter(prefix="/posture", tags=["posture"])
DAY = 86400
MONTH_CACHE_SECONDS = 300
READ_THREADS = 4        # a posture answer is seven store reads, asked at once
OPEN_INCIDENTS_SHOWN = 100
OPEN_INCIDENT_STATUSES = [s for s in STATUSES if s != "closed"]


@router.get("", response_model=Posture, summary="Threat level, per site and tier, trends, "
            "tops and collector health", responses=FOCUS_404,
            dependencies=[allow(*SCREEN_ROLES)])
def read_posture(request: Request, focus: FocusDep, raw: RawStoreDep, tree: SiteTreeDep,
                 policy: IncidentPolicyDep, now: ClockDep):
    key = (focus.scope, tuple(focus.store.sites) if focus.store.sites is not None else None)
    with store_errors():
        return request.app.state.posture_cache.get(
            key, now, lambda: _answer(request, focus, raw, tree, policy, now), _refresh_pool())


def _answer(request: Request, focus, raw, tree, policy, now: float) -> Posture:
    store, scope = focus.store, focus.scope
    day = Query(since=(now - DAY) // 60 * 60, until=posture.window_end(now), limit=1)
    reads = {   # independent store reads, asked at once (the answer waits for the slowest)
        "whole": lambda: posture.overall(store, tree, store.sites, now),
        "trend_24h": lambda: _trend(store, now, DAY, 3600),
        "trend_30d": lambda: _month(request, store, now),
        "day": lambda: _day(store, day),
        "collectors": lambda: collector_health(store, now),
        "deadletters": lambda: deadletters_by_stage(raw, now) if store.sites is None else None,
        "incidents": lambda: _open_incidents(store, policy, now),
    }
    got = _concurrently(reads)
    got.update(got.pop("day"))
    whole = got["whole"]
    return Posture(
        generated_at=timeutil.format(now), level=whole.level, score=whole.score,
        open_alerts=whole.open_alerts, scope=scope, sites=[asdict(s) for s in whole.sites],
        trend_24h=got["trend_24h"], trend_30d=got["trend_30d"],
        by_severity=got["by_severity"], by_category=got["by_category"],
        top=Tops(sources=got["sources"], targets=got["targets"], sites=got["sites"]),
        collectors=[asdict(c) for c in got["collectors"]],
        warnings=posture_warnings(got["collectors"]), deadletters_by_stage=got["deadletters"],
        open_incidents=got["incidents"])


def _open_incidents(store, policy, now: float) -> list[dict]:
    """The open incidents of the subtree, presented as `GET /incidents` presents them (level,
    colour, reporting clock): the wall screen's board. A viewer may not search incidents, and
    the board must not wait for the live feed to learn of incidents opened before it loaded."""
    query = Query(terms={"watchkeeper.incident.status": OPEN_INCIDENT_STATUSES},
                  limit=OPEN_INCIDENTS_SHOWN)
    return [policy.present(doc, now) for doc in store.search("incidents", query).items]


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """Made at the first posture request, not at import; shared by all of them."""
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="posture")


@functools.cache
def _refresh_pool() -> ThreadPoolExecutor:
    """Background recomputations of kept answers. Not `_pool`: a refresh waits for its reads,
    and refreshes filling the read pool would wait for ever on reads queued behind them."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="posture-refresh")


def _concurrently(reads: dict) -> dict:
    futures = {name: _pool().submit(read) for name, read in reads.items()}
    return {name: future.result() for name, future in futures.items()}


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


def _day(store, query: Query) -> dict:
    """The last day's series and tops: one store request (they share the filter)."""
    got = store.summarise("alerts", query, terms={
        "sources": ("source.ip", 10), "targets": ("destination.ip", 10),
        "sites": ("labels.site", 10)}, series={
        "by_severity": ("event.severity", 3600),
        "by_category": ("watchkeeper.alert.category", 3600)})
    return {**{name: Series(interval=3600, buckets=posture.series(got[name]))
               for name in ("by_severity", "by_category")},
            **{name: [BucketPublic(key=b.key, count=b.count) for b in got[name]]
               for name in ("sources", "targets", "sites")}}

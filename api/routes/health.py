"""GET /health: the process answers, the store can be read and no stage is stalled; and
whether a packet capture is dropping frames (degraded, still 200: a restart fixes nothing)."""
from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import ClockDep, RawStoreDep
from api.security import public
from api.schemas.health import CaptureDropsPublic, HealthPublic, StagePublic
from watchkeeper import timeutil
from watchkeeper.collector_silence import capture_gaps
from watchkeeper.store.base import Query, Store

router = APIRouter(tags=["health"])


def store_kind(store: Store) -> str:
    """'sqlite' or 'elasticsearch' (never the URL: it may carry credentials)."""
    scheme = urlparse(getattr(store, "url", "") or "").scheme
    return {"sqlite": "sqlite", "http": "elasticsearch", "https": "elasticsearch"}.get(
        scheme, type(store).__name__)


def _stages(request: Request) -> list[StagePublic] | None:
    view = getattr(request.app.state, "stages", None)
    if view is None:
        return None

    def when(epoch: float | None) -> str | None:
        return timeutil.format(epoch) if epoch is not None else None
    return [StagePublic(name=s.name, state=s.state, lag=s.lag, last_progress=when(s.last_progress),
                        last_step=when(s.last_step), restarts=s.restarts,
                        unowned_partitions=s.unowned, left_out=s.left_out)
            for s in view.statuses()]


@router.get("/health", response_model=HealthPublic, response_model_exclude_none=True,
            responses={503: {"model": HealthPublic,
                             "description": "The store cannot be read, or a stage is stalled"}},
            dependencies=[public("liveness probes carry no credentials")])
def health(store: RawStoreDep, request: Request, now: ClockDep):
    kind = store_kind(store)
    stages = _stages(request)
    try:
        total = store.search("alerts", Query(limit=1)).total
    except Exception as exc:  # any failure of the store means "not healthy", with the reason
        reason = f"{type(exc).__name__}: {exc}"
        return _unhealthy(HealthPublic(status="unavailable", store=kind, reason=reason,
                                       stages=stages))
    stuck = [s.name for s in stages or () if s.state != "ok"]
    if stuck:
        return _unhealthy(HealthPublic(status="degraded", store=kind, alerts=total, stages=stages,
                                       reason=f"stalled: {', '.join(stuck)}"))
    drops = _capture_drops(store, now)
    if drops:
        names = ", ".join(f"{d.collector}@{d.observer}" for d in drops)
        return HealthPublic(status="degraded", store=kind, alerts=total, stages=stages,
                            capture=drops, reason=f"kernel drops: {names}")
    return HealthPublic(status="ok", store=kind, alerts=total, stages=stages)


def _capture_drops(store: Store, now: float) -> list[CaptureDropsPublic]:
    """Captures whose kernel drops grew between their two newest status reports."""
    try:
        gaps = capture_gaps(store, now)
    except Exception:  # noqa: BLE001 - the store answered the count: report what we can
        return []
    return [CaptureDropsPublic(observer=g.observer, collector=g.collector,
                               recent_drops=g.recent_drops) for g in gaps]


def _unhealthy(body: HealthPublic) -> JSONResponse:
    return JSONResponse(status_code=503, content=body.model_dump(exclude_none=True))

"""Application factory: the caller owns the store (opens it, closes it); the app only uses it."""
from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api.errors import install_error_handlers
from api.routes import alerts, events, health, incidents, stats
from watchkeeper.liveness import StageRegistry
from watchkeeper.store.base import Store

API_PREFIX = "/api/v1"


def create_app(store: Store, *, title: str = "Watchkeeper",
               stages: StageRegistry | None = None) -> FastAPI:
    """`stages`: the consuming stages running in this process (`run`), reported read-only by
    /health; None for a process that runs none (`serve`)."""
    app = FastAPI(
        title=title,
        version="0.1.0",
        description="Network-security monitor: alerts, events and statistics (ECS documents).",
    )
    app.state.store = store
    app.state.stages = stages
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(alerts.router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(incidents.router, prefix=API_PREFIX)
    app.include_router(stats.router, prefix=API_PREFIX)
    # Pipeline counters (records accepted, written, dead-lettered) for Prometheus.
    app.mount("/metrics", make_asgi_app())
    return app

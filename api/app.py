"""Application factory: the caller owns the store (opens it, closes it); the app only uses it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import make_asgi_app

from api.errors import install_error_handlers
from api.openapi import install_openapi
from api.posture_cache import PostureCache
from api.routes import (alerts, assets, audit, auth, events, health, incident_actions,
                        incidents, inventory, keys, playbooks, posture, reports, stats, stream,
                        suppressions, triage, users)
from api.routes import sites as site_routes     # `sites` is create_app's site tree
from api.security import Access
from api.web import web_router
from watchkeeper.accounts import Accounts
from watchkeeper.config import AuthSettings, FeedSettings
from watchkeeper.identity import new_secret
from watchkeeper.incidents import IncidentPolicy, IncidentSettings
from watchkeeper.liveness import StageRegistry
from watchkeeper.store import triage as alert_triage
from watchkeeper.store.base import Store, StoreError
from watchkeeper.store.inventory import SiteDirectory

API_PREFIX = "/api/v1"
log = logging.getLogger("watchkeeper.api")


def _migrate_legacy_alerts(store: Store) -> None:
    """Alerts stored before the triage workflow get its vocabulary once (audited)."""
    try:
        migrated = alert_triage.migrate_legacy_alerts(store)
    except StoreError as exc:      # a store down at start: /health says so; try next start
        log.warning("could not migrate legacy alert statuses: %s", exc)
        return
    if migrated:
        log.info("upgraded %d stored alert(s) to the triage status vocabulary", migrated)


def _signing_secret(settings: AuthSettings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key
    # No configured secret: a random one, so tokens end with the process (never a default).
    log.warning("no auth.secret_key configured: access tokens last until this process "
                "stops (set WATCHKEEPER_AUTH__SECRET_KEY)")
    return new_secret(48)


def create_app(store: Store, *, auth_settings: AuthSettings | None = None,
               sites: dict[str, str | None] | None = None,
               title: str = "Watchkeeper", stages: StageRegistry | None = None,
               feed: FeedSettings | None = None,
               report_generator=None,
               incident_settings: IncidentSettings | None = None,
               org_types: dict[str, str] | None = None, web_root: Path | None = None,
               posture_cache_seconds: float = 0.0) -> FastAPI:
    """`sites` is the inventory's tree (site id -> parent id) that tenancy follows; without
    one only principals bound to the root see site-labelled data... and everything else.
    `stages`: the consuming stages running in this process (`run`), reported read-only by
    /health; None for a process that runs none (`serve`).
    `report_generator`: the callable POST /api/v1/reports uses (given by the composition
    root: the API imports no other feature); None = that route answers 503.
    `incident_settings` and `org_types` (site id -> cii | state_organ | other) drive the
    incident reporting clocks.
    `web_root`: the built front end (default web/dist of this checkout, `make install`).
    `posture_cache_seconds`: how long a posture answer is reused per scope (0: never;
    api/posture_cache.py)."""
    settings = auth_settings or AuthSettings()
    secret = _signing_secret(settings)
    app = FastAPI(
        title=title,
        version="0.1.0",
        # Only /health (and /metrics, the docs) answer without credentials, if configured.
        **({} if settings.public_docs else {"docs_url": None, "redoc_url": None,
                                             "openapi_url": None}),
        description="Network-security monitor: alerts, events and statistics (ECS documents). "
                    "Log in at /api/v1/auth/token; see docs/api-access.md.",
    )
    app.state.store = store
    app.state.stages = stages
    app.state.feed = feed or FeedSettings()
    app.state.posture_cache = PostureCache(posture_cache_seconds)
    app.state.secret = secret          # signs the live feed's short-lived stream tokens
    directory = SiteDirectory(store, sites)
    directory.refresh()          # sites stored in the inventory win over `sites`
    app.state.site_directory = directory
    app.state.access = Access(Accounts(store, settings, secret, directory.parents),
                              directory.parents)
    app.state.report_generator = report_generator
    # the reporting clocks' org types: the configured ones, then the stored sites'
    # (kept current by api.deps.sync_sites)
    app.state.incident_policy = IncidentPolicy(incident_settings or IncidentSettings(),
                                               {**(org_types or {}),
                                                **directory.org_types})
    app.state.clock = time.time        # tests freeze it: the reporting clocks read it
    install_error_handlers(app)
    _migrate_legacy_alerts(store)
    install_openapi(app)
    app.include_router(health.router)
    for module in (auth, alerts, triage, events, incidents, incident_actions, stats, posture,
                   stream, site_routes, assets, inventory, users, keys, audit, reports,
                   suppressions, playbooks):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(web_router(web_root))
    if settings.public_metrics:
        # Pipeline counters (records accepted, written, dead-lettered) for Prometheus.
        app.mount("/metrics", make_asgi_app())
    return app

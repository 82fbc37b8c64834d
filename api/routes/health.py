"""GET /health: the process answers and the store can be read."""
from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import RawStoreDep
from api.security import public
from api.schemas.health import HealthPublic
from watchkeeper.store.base import Query, Store

router = APIRouter(tags=["health"])


def store_kind(store: Store) -> str:
    """'sqlite' or 'elasticsearch' (never the URL: it may carry credentials)."""
    scheme = urlparse(getattr(store, "url", "") or "").scheme
    return {"sqlite": "sqlite", "http": "elasticsearch", "https": "elasticsearch"}.get(
        scheme, type(store).__name__)


@router.get("/health", response_model=HealthPublic, response_model_exclude_none=True,
            responses={503: {"model": HealthPublic, "description": "The store cannot be read"}},
            dependencies=[public("liveness probes carry no credentials")])
def health(store: RawStoreDep):
    kind = store_kind(store)
    try:
        total = store.search("alerts", Query(limit=1)).total
    except Exception as exc:  # any failure of the store means "not healthy", with the reason
        reason = f"{type(exc).__name__}: {exc}"
        return JSONResponse(status_code=503, content=HealthPublic(
            status="unavailable", store=kind, reason=reason).model_dump(exclude_none=True))
    return HealthPublic(status="ok", store=kind, alerts=total)

"""Live feed: Server-Sent Events of new and changed alerts and incidents, posture ticks and
heartbeats, scoped to the caller's site subtree, resumable with Last-Event-ID
(docs/api-posture.md). The data side is watchkeeper/feed.py: store polling, bus-independent."""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.deps import SiteTreeDep, get_access
from api.schemas.stream import StreamToken
from api.security import (SCREEN_ROLES, Allow, CurrentPrincipal, _api_key, _bearer, allow,
                          current_principal, unauthorized)
from watchkeeper import feed, posture, timeutil
from watchkeeper.collector_health import collector_health, posture_warnings
from watchkeeper.identity import AuthError, Principal
from watchkeeper.store.base import StoreError
from watchkeeper.store.scoped import ScopedStore, subtree
from watchkeeper.stream_tokens import issue_stream_token, principal_from_stream_token

router = APIRouter(prefix="/stream", tags=["stream"])


def stream_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
    token: Annotated[str | None, Query(max_length=2048, description="A stream token")] = None,
) -> Principal:
    """Header credentials as everywhere, or `?token=` (a stream token) for EventSource."""
    if token is None or bearer or api_key:
        return current_principal(request, bearer, api_key)
    try:
        return principal_from_stream_token(token, request.app.state.secret,
                                           get_access(request).accounts)
    except AuthError as exc:
        raise unauthorized(str(exc)) from None


class AllowStream(Allow):
    """Like allow(...), with the stream's own way of naming the caller."""

    def __call__(self, principal: Annotated[Principal, Depends(stream_principal)]) -> Principal:
        return super().__call__(principal)


StreamPrincipal = Annotated[Principal, Depends(AllowStream(SCREEN_ROLES))]


@router.post("/token", response_model=StreamToken, summary="A short-lived token for "
             "EventSource (which cannot send headers)", dependencies=[allow(*SCREEN_ROLES)])
def stream_token(request: Request, principal: CurrentPrincipal):
    ttl = request.app.state.feed.token_seconds
    token = issue_stream_token(principal, request.app.state.secret, ttl)
    return StreamToken(token=token, expires_in=ttl, url=f"{request.url.path[:-6]}?token={token}")


@router.get("", include_in_schema=False)
def stream(request: Request, principal: StreamPrincipal, tree: SiteTreeDep,
           last_event_id: Annotated[str | None, Header(max_length=4096)] = None):
    """text/event-stream; not in the OpenAPI schema (it never ends): see docs/api-posture.md."""
    settings = request.app.state.feed
    try:
        cursor = feed.FeedCursor.decode(last_event_id) if last_event_id else \
            feed.FeedCursor.starting_at(time.time() - settings.settle_seconds)
    except feed.BadCursor as exc:
        raise HTTPException(400, str(exc)) from None
    sites = subtree(get_access(request).sites or {}, principal.site)
    reader = ScopedStore(request.app.state.store, sites)
    return StreamingResponse(_events(request, reader, cursor, tree, settings),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _message(event: str, data: dict, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _posture_tick(reader: ScopedStore, tree, now: float) -> dict:
    """Levels per site and the detection-health warnings: a collector that falls silent or
    drops packets shows on the screen at the next tick, not at its next full reload."""
    whole = posture.overall(reader, tree, reader.sites, now)
    return {"generated_at": timeutil.format(now), "level": whole.level, "score": whole.score,
            "open_alerts": whole.open_alerts,
            "sites": [{"site": s.site, "level": s.level, "score": s.score,
                       "open_alerts": s.open_alerts} for s in whole.sites],
            "warnings": posture_warnings(collector_health(reader, now))}


async def _events(request: Request, reader: ScopedStore, cursor: feed.FeedCursor, tree,
                  settings) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    next_beat = next_tick = started
    yield "retry: 3000\n\n"
    while loop.time() - started < settings.lifetime_seconds:
        try:
            items, cursor = await run_in_threadpool(feed.poll, reader, cursor, time.time(),
                                                    settings.settle_seconds)
            for item in items:
                yield _message(item.event, item.doc, item.cursor)
            if loop.time() >= next_tick:
                tick = await run_in_threadpool(_posture_tick, reader, tree, time.time())
                yield _message("posture", tick, cursor.encode())
                next_tick = loop.time() + settings.posture_seconds
        except StoreError as exc:        # the store is down: say so, keep the stream open
            yield f": store unavailable ({type(exc).__name__}), retrying\n\n"
        if loop.time() >= next_beat:
            yield f": heartbeat {timeutil.format(time.time())}\n\n"
            next_beat = loop.time() + settings.heartbeat_seconds
        if await request.is_disconnected():
            return
        await asyncio.sleep(settings.poll_seconds)

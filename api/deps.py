"""Typed dependency aliases shared by the routers (FastAPI-template style)."""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request

from api.security import Access, CurrentPrincipal, get_access
from watchkeeper.posture import SiteNode
from watchkeeper.incidents import IncidentPolicy
from watchkeeper.store.base import Store
from watchkeeper.store.scoped import ScopedStore, subtree


def get_store(request: Request) -> Store:
    """The whole store `create_app` was given: health, identity and audit only."""
    return request.app.state.store


def sync_sites(request: Request, force: bool = False) -> None:
    """Follow the stored site tree (changed by this process, or another, or a seed)."""
    directory = request.app.state.site_directory
    if directory.refresh() if force else directory.maybe_refresh():
        access = get_access(request)
        access.sites = access.accounts.sites = directory.parents
        request.app.state.incident_policy.org_types.update(directory.org_types)


def get_scoped_store(request: Request, principal: CurrentPrincipal) -> ScopedStore:
    """The store as the caller may see it: tenant data of their site subtree only."""
    sync_sites(request)
    sites = get_access(request).sites or {}
    return ScopedStore(request.app.state.store, subtree(sites, principal.site))


def get_current_actor(principal: CurrentPrincipal) -> str:
    """Who is acting, as written in the audit trail."""
    return principal.actor


def get_clock() -> float:
    """Now, epoch seconds: the one place tests freeze (app.dependency_overrides)."""
    return time.time()


def get_site_tree(request: Request) -> dict[str, SiteNode]:
    """The inventory's site tree with display names (id -> node)."""
    sync_sites(request)
    access = get_access(request)
    directory = request.app.state.site_directory
    return {sid: SiteNode(sid, directory.names.get(sid, sid), parent,
                          directory.org_types.get(sid, "other"))
            for sid, parent in (access.sites or {}).items()}


def get_incident_policy(request: Request) -> IncidentPolicy:
    return request.app.state.incident_policy


def get_now(request: Request) -> float:
    """The moment of this request (the app's clock: tests freeze it)."""
    return request.app.state.clock()


def get_visible_sites(request: Request, principal: CurrentPrincipal) -> list[str] | None:
    """The caller's site subtree (None = everything)."""
    return subtree(get_access(request).sites or {}, principal.site)


RawStoreDep = Annotated[Store, Depends(get_store)]
StoreDep = Annotated[ScopedStore, Depends(get_scoped_store)]
AccessDep = Annotated[Access, Depends(get_access)]
CurrentActor = Annotated[str, Depends(get_current_actor)]
ClockDep = Annotated[float, Depends(get_clock)]
SiteTreeDep = Annotated[dict[str, SiteNode], Depends(get_site_tree)]
IncidentPolicyDep = Annotated[IncidentPolicy, Depends(get_incident_policy)]
NowDep = Annotated[float, Depends(get_now)]
VisibleSitesDep = Annotated[list[str] | None, Depends(get_visible_sites)]

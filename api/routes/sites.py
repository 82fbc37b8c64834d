"""Sites of the inventory (region → city → county): read by the read roles, edited by the
security administrator, within the caller's subtree (outside = 404)."""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Request, Response

from api.deps import CurrentActor, CurrentPrincipal, RawStoreDep, StoreDep, sync_sites
from api.inventory_errors import edit_errors
from api.schemas.inventory import SiteCreate, SiteList, SitePublic, SiteUpdate
from api.security import READ_ROLES, allow
from watchkeeper.store import inventory as inv
from watchkeeper.store import inventory_edit as edit

router = APIRouter(prefix="/sites", tags=["inventory"])
SiteId = Annotated[str, Path(min_length=1, max_length=64, description="Site id")]
ADMIN = allow("security_admin")


@router.get("", response_model=SiteList, summary="Sites of your subtree",
            dependencies=[allow(*READ_ROLES)])
def list_sites(store: StoreDep):
    sites = inv.stored_sites(store)
    return SiteList(items=[s.model_dump() for s in sites], total=len(sites))


@router.get("/{site_id}", response_model=SitePublic, dependencies=[allow(*READ_ROLES)])
def read_site(store: StoreDep, site_id: SiteId):
    found = store.get_by_ids("sites", [site_id])
    if not found:
        raise HTTPException(404, f"no site {site_id!r}")
    return inv.site_of(found[0]).model_dump()


@router.post("", response_model=SitePublic, status_code=201, summary="Create a site (audited)",
             dependencies=[ADMIN])
def create_site(request: Request, raw: RawStoreDep, principal: CurrentPrincipal,
                actor: CurrentActor, body: Annotated[SiteCreate, Body()]):
    with edit_errors():
        site = edit.create_site(raw, body, principal.site, actor, time.time())
    sync_sites(request, force=True)
    return site.model_dump()


@router.patch("/{site_id}", response_model=SitePublic, summary="Change a site (audited)",
              dependencies=[ADMIN])
def update_site(request: Request, raw: RawStoreDep, principal: CurrentPrincipal,
                actor: CurrentActor, site_id: SiteId, body: Annotated[SiteUpdate, Body()]):
    # null means "unchanged" except for parent, where it means "top level"
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
               if v is not None or k == "parent"}
    with edit_errors():
        site = edit.update_site(raw, site_id, changes, principal.site, actor, time.time())
    sync_sites(request, force=True)
    return site.model_dump()


@router.delete("/{site_id}", status_code=204, summary="Delete an empty site (audited)",
               dependencies=[ADMIN])
def delete_site(request: Request, raw: RawStoreDep, principal: CurrentPrincipal,
                actor: CurrentActor, site_id: SiteId):
    with edit_errors():
        edit.delete_site(raw, site_id, principal.site, actor)
    sync_sites(request, force=True)
    return Response(status_code=204)

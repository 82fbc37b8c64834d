"""Assets of the inventory (CIDR → site, MLPS level, criticality): read and looked up by IP
by the read roles, edited by the security administrator, within the caller's subtree.
Alerting reads the stored inventory (refreshed every few seconds): an edit reaches new
alerts without a restart."""
from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Response
from fastapi import Query as Param

from api.deps import CurrentActor, CurrentPrincipal, RawStoreDep, StoreDep
from api.inventory_errors import edit_errors
from api.params import IpAddress
from api.schemas.inventory import AssetCreate, AssetList, AssetLookup, AssetPublic, AssetUpdate
from api.security import READ_ROLES, allow
from watchkeeper.store import inventory as inv
from watchkeeper.store import inventory_edit as edit

router = APIRouter(prefix="/assets", tags=["inventory"])
AssetId = Annotated[str, Path(min_length=1, max_length=64, description="Asset id")]
ADMIN = allow("security_admin")


def _public(asset_id: str, asset) -> dict:
    return {"id": asset_id, **asset.model_dump()}


@router.get("", response_model=AssetList, summary="Assets of your subtree",
            dependencies=[allow(*READ_ROLES)])
def list_assets(store: StoreDep, site: Annotated[str | None, Param(max_length=64)] = None):
    assets = [(i, a) for i, a in inv.stored_assets(store) if site is None or a.site == site]
    return AssetList(items=[_public(i, a) for i, a in assets], total=len(assets))


@router.get("/lookup", response_model=AssetLookup, summary="The asset an address belongs to",
            dependencies=[allow(*READ_ROLES)])
def lookup(store: StoreDep, ip: Annotated[IpAddress, Param(description="IPv4 or IPv6")]):
    if ip is None:
        raise HTTPException(422, [{"type": "missing", "loc": ["query", "ip"],
                                   "msg": "Field required", "input": None}])
    visible = inv.load_from_store(store)        # the caller's subtree only
    found = visible.lookup(ip)
    if found is None:
        return AssetLookup(ip=ip, asset=None, site_path=[])
    return AssetLookup(ip=ip, asset=_public(inv.asset_id(found.asset.cidr), found.asset),
                       site_path=found.site_path)


@router.get("/{asset_id}", response_model=AssetPublic, dependencies=[allow(*READ_ROLES)])
def read_asset(store: StoreDep, asset_id: AssetId):
    found = store.get_by_ids("assets", [asset_id])
    if not found:
        raise HTTPException(404, f"no asset {asset_id!r}")
    return _public(*inv.asset_of(found[0]))


@router.post("", response_model=AssetPublic, status_code=201, summary="Create an asset "
             "(audited)", dependencies=[ADMIN])
def create_asset(raw: RawStoreDep, principal: CurrentPrincipal, actor: CurrentActor,
                 body: Annotated[AssetCreate, Body()]):
    with edit_errors():
        asset_id = edit.create_asset(raw, body, principal.site, actor, time.time())
    return _public(asset_id, body.model_copy(update={"cidr": inv.normal_cidr(body.cidr)}))


@router.patch("/{asset_id}", response_model=AssetPublic, summary="Change an asset (audited)",
              dependencies=[ADMIN])
def update_asset(raw: RawStoreDep, principal: CurrentPrincipal, actor: CurrentActor,
                 asset_id: AssetId, body: Annotated[AssetUpdate, Body()]):
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items()
               if v is not None or k in ("name", "department", "owner")}
    with edit_errors():
        asset = edit.update_asset(raw, asset_id, changes, principal.site, actor, time.time())
    return _public(asset_id, asset)


@router.delete("/{asset_id}", status_code=204, summary="Delete an asset (audited)",
               dependencies=[ADMIN])
def delete_asset(raw: RawStoreDep, principal: CurrentPrincipal, actor: CurrentActor,
                 asset_id: AssetId):
    with edit_errors():
        edit.delete_asset(raw, asset_id, principal.site, actor)
    return Response(status_code=204)

"""The inventory as a file: export (YAML or CSV, your subtree; audited) and import (create or
replace every site and asset given, all within your subtree; the security administrator)."""
from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Query as Param

from api.deps import CurrentActor, CurrentPrincipal, RawStoreDep, StoreDep, sync_sites
from api.inventory_errors import edit_errors
from api.schemas.inventory import ImportResult
from api.security import READ_ROLES, allow
from watchkeeper import inventory_files
from watchkeeper.store import inventory as inv
from watchkeeper.store import inventory_edit as edit
from watchkeeper.store.audit import audit_record

router = APIRouter(prefix="/inventory", tags=["inventory"])
Format = Annotated[Literal["yaml", "csv"], Param(description="File format")]
MEDIA = {"yaml": "application/yaml", "csv": "text/csv"}
MAX_IMPORT_BYTES = 5 * 1024 * 1024
_FILE = {"schema": {"type": "string"}}
_YAML = {"type": "object", "properties": {"sites": {"type": "array", "items": {"type": "object"}},
                                          "assets": {"type": "array",
                                                     "items": {"type": "object"}}}}


@router.get("/export", response_class=Response, summary="Sites and assets of your subtree as "
            "a file (audited)", dependencies=[allow(*READ_ROLES)],
            responses={200: {"content": {"application/yaml": {"schema": _YAML},
                                         "text/csv": _FILE}}})
def export_inventory(store: StoreDep, raw: RawStoreDep, actor: CurrentActor,
                     format: Format = "yaml"):
    sites = inv.stored_sites(store)
    assets = [a for _, a in inv.stored_assets(store)]
    writer = inventory_files.to_yaml if format == "yaml" else inventory_files.to_csv
    raw.append_audit(audit_record("inventory.export", actor, object_kind="inventory",
                                  message=f"{format}: {len(sites)} sites, {len(assets)} assets"))
    return Response(writer(sites, assets), media_type=f"{MEDIA[format]}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="inventory.{format}"'})


@router.post("/import", response_model=ImportResult, summary="Create or replace sites and "
             "assets from a file (audited)", dependencies=[allow("security_admin")],
             openapi_extra={"requestBody": {"required": True, "content": {
                 media: _FILE for media in MEDIA.values()}}})
async def import_inventory(request: Request, raw: RawStoreDep, principal: CurrentPrincipal,
                           actor: CurrentActor, format: Format = "yaml"):
    body = await request.body()
    if len(body) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"inventory files up to {MAX_IMPORT_BYTES // 1024 // 1024} MiB")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(400, "the file must be UTF-8") from None
    reader = inventory_files.from_yaml if format == "yaml" else inventory_files.from_csv
    with edit_errors():
        sites, assets = reader(text)
        counts = edit.import_inventory(raw, sites, assets, principal.site, actor, time.time())
    sync_sites(request, force=True)
    return ImportResult(sites=counts[0], assets=counts[1])

"""API keys for machines (system administrator): create (shown once), list, revoke."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import AccessDep, CurrentActor
from api.routes.users import _within
from api.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyPublic
from api.security import CurrentPrincipal, allow
from watchkeeper.identity import ADMIN_ROLES

router = APIRouter(prefix="/keys", tags=["keys"])

KeyId = Annotated[str, Path(min_length=1, max_length=64)]
ADMINS = allow("system_admin")


@router.get("", response_model=KeyList, dependencies=[ADMINS])
def list_keys(access: AccessDep, principal: CurrentPrincipal):
    keys = [k for k in access.accounts.list_keys() if _within(access, principal, k["site"])]
    return KeyList(items=[KeyPublic(**k) for k in keys], total=len(keys))


@router.post("", response_model=KeyCreated, status_code=201, dependencies=[ADMINS],
             summary="Create a key: the answer holds the key, shown this once")
def create_key(body: KeyCreate, access: AccessDep, principal: CurrentPrincipal,
               actor: CurrentActor):
    if body.role in ADMIN_ROLES:
        raise HTTPException(403, "keys for administrator roles are created from the CLI")
    if not _within(access, principal, body.site):
        raise HTTPException(422, [{"type": "value_error", "loc": ["body", "site"],
                                   "msg": f"site {body.site!r} is not in your subtree"}])
    try:
        key, whole = access.accounts.create_key(body.name, body.role, body.site, actor)
    except ValueError as exc:
        raise HTTPException(422, [{"type": "value_error", "loc": ["body"], "msg": str(exc)}])
    shown = {k: v for k, v in key.items() if k != "digest"}
    return KeyCreated(**shown, key=whole)


@router.delete("/{key_id}", response_model=KeyPublic, dependencies=[ADMINS],
               responses={404: {"description": "No such key in your subtree"}})
def revoke_key(key_id: KeyId, access: AccessDep, principal: CurrentPrincipal,
               actor: CurrentActor):
    key = access.accounts.ids.get_key(key_id)
    if key is None or not _within(access, principal, key["site"]):
        raise HTTPException(404, f"no key {key_id!r}")
    key = access.accounts.revoke_key(key_id, actor)
    return KeyPublic(**{k: v for k, v in key.items() if k != "digest"})

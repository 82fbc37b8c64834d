"""Users (system administrator): list, create, disable or re-enable, reset a password.

The three administrators (三员) are created from the CLI only, and a system administrator
manages users of their own site subtree only (others answer 404).
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from api.deps import AccessDep, CurrentActor
from api.security import CurrentPrincipal, allow
from api.schemas.users import UserCreate, UserList, UserPublic, UserUpdate
from watchkeeper.identity import ADMIN_ROLES, Principal
from watchkeeper.store.scoped import subtree

router = APIRouter(prefix="/users", tags=["users"])

UserNameParam = Annotated[str, Path(min_length=1, max_length=64)]
ADMINS = allow("system_admin")


def _public(user: dict) -> UserPublic:
    return UserPublic(name=user["name"], role=user["role"], site=user["site"],
                      disabled=user["disabled"], locked_until=user.get("locked_until") or None)


def _within(access, principal: Principal, site: str) -> bool:
    visible = subtree(access.sites or {}, principal.site)
    return visible is None or site in visible


@router.get("", response_model=UserList, dependencies=[ADMINS])
def list_users(access: AccessDep, principal: CurrentPrincipal):
    users = [u for u in access.accounts.ids.list_users() if _within(access, principal, u["site"])]
    return UserList(items=[_public(u) for u in users], total=len(users))


@router.post("", response_model=UserPublic, status_code=201, dependencies=[ADMINS],
             responses={403: {"description": "Administrators are created from the CLI"},
                        409: {"description": "Name taken"}})
def create_user(body: UserCreate, access: AccessDep, principal: CurrentPrincipal,
                actor: CurrentActor):
    if body.role in ADMIN_ROLES:
        raise HTTPException(403, "the three administrators are created from the CLI "
                                 "(watchkeeper users add): no administrator appoints another")
    if not _within(access, principal, body.site):
        raise HTTPException(422, [{"type": "value_error", "loc": ["body", "site"],
                                   "msg": f"site {body.site!r} is not in your subtree"}])
    if access.accounts.ids.get_user(body.name):
        raise HTTPException(409, f"user {body.name!r} exists")
    try:
        user = access.accounts.add_user(body.name, body.role, body.site, body.password, actor)
    except ValueError as exc:
        raise HTTPException(422, [{"type": "value_error", "loc": ["body"], "msg": str(exc)}])
    return _public(user)


@router.patch("/{name}", response_model=UserPublic, dependencies=[ADMINS],
              responses={404: {"description": "No such user in your subtree"}})
def update_user(name: UserNameParam, body: UserUpdate, access: AccessDep,
                principal: CurrentPrincipal, actor: CurrentActor):
    user = access.accounts.ids.get_user(name)
    if user is None or not _within(access, principal, user["site"]):
        raise HTTPException(404, f"no user {name!r}")
    if user["role"] in ADMIN_ROLES and user["name"] != principal.name:
        raise HTTPException(403, "administrators are managed from the CLI")
    if body.password is not None:
        access.accounts.set_password(name, body.password, actor)
    if body.disabled is not None:
        user = access.accounts.set_disabled(name, body.disabled, actor)
    return _public(access.accounts.ids.get_user(name) or user)

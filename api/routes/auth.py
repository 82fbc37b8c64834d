"""OAuth2 password flow: log in, refresh (rotating), log out, who am I."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response

from api.deps import AccessDep
from api.security import ANY_ROLE, CurrentPrincipal, allow, public, unauthorized
from api.schemas.auth import LogoutRequest, PrincipalPublic, TokenPublic
from watchkeeper.accounts import LockedOut
from watchkeeper.identity import AuthError

router = APIRouter(prefix="/auth", tags=["auth"])

Field128 = Annotated[str | None, Form(min_length=1, max_length=128)]


@router.post("/token", response_model=TokenPublic, summary="Log in, or trade a refresh token",
             responses={401: {"description": "Wrong credentials"},
                        429: {"description": "Locked out after repeated failures"}},
             dependencies=[public("the credentials are the form itself")])
def token(
    request: Request,
    access: AccessDep,
    grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
    username: Field128 = None,
    password: Annotated[str | None, Form(min_length=1, max_length=256)] = None,
    refresh_token: Annotated[str | None, Form(min_length=1, max_length=512)] = None,
):
    source = request.client.host if request.client else None
    try:
        if grant_type == "password":
            _require(grant_type, username=username, password=password)
            pair = access.accounts.login(username, password, source_ip=source)
        else:
            _require(grant_type, refresh_token=refresh_token)
            pair = access.accounts.refresh(refresh_token)
    except LockedOut as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    return TokenPublic(access_token=pair.access_token, refresh_token=pair.refresh_token,
                       expires_in=pair.expires_in)


def _require(grant_type: str, **fields: str | None) -> None:
    missing = [name for name, value in fields.items() if value is None]
    if missing:
        raise HTTPException(422, [{"type": "missing", "loc": ["body", name],
                                   "msg": f"required with grant_type={grant_type}"}
                                  for name in missing])


@router.post("/logout", status_code=204, summary="Revoke a refresh token",
             dependencies=[allow(*ANY_ROLE)])
def logout(body: LogoutRequest, principal: CurrentPrincipal, access: AccessDep):
    access.accounts.logout(body.refresh_token, principal.name)
    return Response(status_code=204)


@router.get("/me", response_model=PrincipalPublic, summary="The caller's identity",
            dependencies=[allow(*ANY_ROLE)])
def me(principal: CurrentPrincipal):
    return PrincipalPublic(name=principal.name, role=principal.role, site=principal.site,
                           kind=principal.kind)

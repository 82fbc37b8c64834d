"""Who is calling, and may they call this route.

Credentials: `Authorization: Bearer <access JWT or API key>` or `X-API-Key: <key>`. Every route
declares its roles with `allow(...)` (or `public()`); tests/unit/api/test_access_matrix.py
walks the app's routes and fails on a route that declares neither.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from watchkeeper.accounts import Accounts
from watchkeeper.identity import ROLES, AuthError, Principal, looks_like_jwt

# Route groups (docs/api-access.md has the table). The three administrators (三员) share none.
READ_ROLES = ("analyst", "responder", "security_admin")
SCREEN_ROLES = ("viewer", *READ_ROLES)
TRIAGE_ROLES = ("analyst", "responder")
ANY_ROLE = ROLES

_bearer = HTTPBearer(auto_error=False, description="Access token from /api/v1/auth/token, "
                                                   "or an API key")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


@dataclass
class Access:
    """What `create_app` puts on app.state.access: accounts and the inventory's site tree."""
    accounts: Accounts
    sites: dict[str, str | None] | None      # site id -> parent id; None = no inventory


def get_access(request: Request) -> Access:
    return request.app.state.access


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    accounts = get_access(request).accounts
    source = request.client.host if request.client else None
    token = bearer.credentials if bearer else api_key
    if not token:
        raise unauthorized("credentials required: Authorization: Bearer <token> or X-API-Key")
    try:
        if bearer and looks_like_jwt(token):
            return accounts.principal_from_access(token)
        return accounts.principal_from_key(token, source_ip=source)
    except AuthError as exc:
        raise unauthorized(str(exc)) from None
    except ValueError as exc:      # a token the store cannot even look up
        raise unauthorized(f"invalid credentials ({type(exc).__name__})") from None
    # StoreError propagates: a store that is down is a 503, not the caller's fault.


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class Allow:
    """Dependency: the caller must hold one of `roles` (403 otherwise)."""

    def __init__(self, roles: tuple[str, ...]):
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        self.roles = frozenset(roles)

    def __call__(self, principal: CurrentPrincipal) -> Principal:
        if principal.role not in self.roles:
            raise HTTPException(403, f"role {principal.role} may not do this; allowed: "
                                     f"{', '.join(sorted(self.roles))}")
        return principal


class Public:
    """Dependency marker: the route answers without credentials (health, login)."""

    def __init__(self, why: str):
        self.why = why

    def __call__(self) -> None:
        return None


def allow(*roles: str):
    return Depends(Allow(roles))


def public(why: str):
    return Depends(Public(why))

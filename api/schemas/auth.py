"""Auth schemas: the OAuth2 token answer, logout, and who am I."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.identity import Role


class TokenPublic(BaseModel):
    access_token: str = Field(description="JWT; send as `Authorization: Bearer …`")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token lives")
    refresh_token: str = Field(description="Single use: trade it at /auth/token "
                                           "(grant_type=refresh_token) for a new pair")


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str = Field(min_length=1, max_length=512)


class PrincipalPublic(BaseModel):
    name: str
    role: Role
    site: str = Field(description="Site the caller is bound to; `/` = the root (everything)")
    kind: str = Field(description="user or key")

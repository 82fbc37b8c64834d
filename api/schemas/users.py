"""User schemas: Create, Update, Public, List (never a password or its hash)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.identity import Role

UserName = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = UserName
    role: Role
    site: str = Field("/", min_length=1, max_length=64, description="Inventory site id, `/` = root")
    password: str = Field(min_length=12, max_length=256)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disabled: bool | None = None
    password: str | None = Field(None, min_length=12, max_length=256)


class UserPublic(BaseModel):
    name: str
    role: Role
    site: str
    disabled: bool
    locked_until: float | None = Field(None, description="Epoch seconds; set while locked out")


class UserList(BaseModel):
    items: list[UserPublic]
    total: int

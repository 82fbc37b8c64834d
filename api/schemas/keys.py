"""API key schemas: Create, Public, Created (the key itself, shown once), List."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.identity import Role


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="What uses it: 'wall screen'")
    role: Role
    site: str = Field("/", min_length=1, max_length=64, description="Inventory site id, `/` = root")


class KeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    site: str
    revoked: bool
    created: float
    created_by: str
    last_used: float | None = Field(None, description="Epoch seconds, updated at most once a "
                                                      "minute")


class KeyCreated(KeyPublic):
    key: str = Field(description="The whole key: shown this once, never again")


class KeyList(BaseModel):
    items: list[KeyPublic]
    total: int

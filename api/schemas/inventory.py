"""Sites and assets of the inventory (docs/api-posture.md#assets)."""
from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchkeeper.assets import Asset, Site

SITE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
OrgType = Literal["cii", "state_organ", "other"]


class SiteCreate(Site):
    id: str = Field(pattern=SITE_ID, description="Stable id, used as labels.site")


class SiteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=128)
    parent: str | None = Field(None, max_length=64, description="null: a top-level site "
                                                                 "(root principals only)")
    org_type: OrgType | None = None


class SitePublic(Site):
    pass


class SiteList(BaseModel):
    items: list[SitePublic]
    total: int


class AssetCreate(Asset):
    cidr: str = Field(max_length=64, description="Address or network, e.g. 10.20.0.0/16")
    name: str | None = Field(None, max_length=128)
    department: str | None = Field(None, max_length=128)
    owner: str | None = Field(None, max_length=128)

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(str(exc)) from None


class AssetUpdate(BaseModel):
    """The CIDR is the asset's identity: to change it, delete and create."""
    model_config = ConfigDict(extra="forbid")
    site: str | None = Field(None, min_length=1, max_length=64)
    name: str | None = Field(None, max_length=128)
    department: str | None = Field(None, max_length=128)
    owner: str | None = Field(None, max_length=128)
    mlps_level: int | None = Field(None, ge=1, le=5)
    criticality: int | None = Field(None, ge=1, le=5)


class AssetPublic(Asset):
    id: str = Field(description="Stable id derived from the normalised CIDR")


class AssetList(BaseModel):
    items: list[AssetPublic]
    total: int


class AssetLookup(BaseModel):
    ip: str
    asset: AssetPublic | None = Field(description="The most specific asset containing the "
                                                  "address, or null")
    site_path: list[str] = Field(description="Top-level site → … → the asset's site")


class ImportResult(BaseModel):
    sites: int = Field(description="Sites created or replaced")
    assets: int = Field(description="Assets created or replaced")

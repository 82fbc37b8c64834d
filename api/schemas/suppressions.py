"""Suppression rule schemas: Create, FromAlert, Update, Public, Created, List."""
from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from api.params import Category

Verdict = Literal["false_positive", "benign_positive"]
Reason = Field(min_length=3, max_length=500, description="Why these alerts are not worth an "
                                                          "alert (kept in every closed alert)")
Expiry = Field(None, description="When the rule stops matching (ISO-8601 with a zone; "
                                 "default 30 days from now, at most 366)")
Detector = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")


def _cidr(value: str | None) -> str | None:
    if value is not None:
        ipaddress.ip_network(value, strict=False)      # ValueError -> 422 naming the field
    return value


class _Match(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detector: str | None = Detector
    category: Category | None = None
    source_cidr: str | None = Field(None, max_length=64, description="Actor host or network")
    destination_cidr: str | None = Field(None, max_length=64, description="Target host or network")

    _cidrs = field_validator("source_cidr", "destination_cidr")(_cidr)


class SuppressionCreate(_Match):
    reason: str = Reason
    verdict: Verdict = "benign_positive"
    site: str | None = Field(None, min_length=1, max_length=64,
                             description="Site whose subtree the rule covers (default: yours; "
                                         "`/` = every site, for root principals)")
    expires_at: AwareDatetime | None = Expiry

    @model_validator(mode="after")
    def _narrow(self) -> SuppressionCreate:
        if not (self.detector or self.category or self.source_cidr or self.destination_cidr):
            raise ValueError("give at least one of detector, category, source_cidr, "
                             "destination_cidr")
        return self


class SuppressionFromAlert(BaseModel):
    """Close this alert with a verdict and silence alerts like it from now on."""
    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    reason: str = Reason
    match: list[Literal["detector", "category", "source", "destination"]] = Field(
        ["detector", "source"], min_length=1,
        description="What of this alert the rule matches: its detector, category, actor "
                    "(source.ip) and/or target (destination.ip)")
    expires_at: AwareDatetime | None = Expiry


class SuppressionUpdate(_Match):
    reason: str | None = Field(None, min_length=3, max_length=500)
    verdict: Verdict | None = None
    expires_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _something(self) -> SuppressionUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in ("reason", "verdict", "expires_at"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict:
        out = self.model_dump(include=self.model_fields_set)
        if isinstance(out.get("expires_at"), datetime):
            out["expires_at"] = out["expires_at"].isoformat()
        return out


class SuppressionPublic(BaseModel):
    id: str
    reason: str
    verdict: Verdict
    detector: str | None = None
    category: str | None = None
    source_cidr: str | None = None
    destination_cidr: str | None = None
    site: str | None = Field(None, description="None: every site")
    sites: list[str] | None = Field(None, description="Site ids covered (None: every site)")
    created_by: str
    created_at: str
    updated_at: str
    expires_at: str
    expired: bool = Field(description="Expired by hand (see also `active`)")
    expired_at: str | None = None
    active: bool = Field(description="Matching new alerts now")


class SuppressionCreated(BaseModel):
    rule: SuppressionPublic
    closed: int = Field(description="Stored open alerts the new rule closed")


class SuppressionList(BaseModel):
    items: list[SuppressionPublic]
    total: int

"""Audit schemas: Public (one chained record), List (a page), Verify (the chain check)."""
from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.common import EcsDocument


class AuditPublic(EcsDocument):
    """`event.action` (auth.login, alert.update, user.create …), `event.outcome`, `user.name`,
    `watchkeeper.audit` (seq, prev_hash, hash, object_kind, object_id, changes)."""


class AuditList(BaseModel):
    items: list[AuditPublic]
    total: int
    next_cursor: str | None


class AuditVerify(BaseModel):
    ok: bool
    checked: int = Field(description="Records that fit the chain, from the first")
    broken_seq: int | None = Field(None, description="First record that does not fit")
    broken_id: str | None = None
    reason: str = ""

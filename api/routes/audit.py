"""The audit trail (audit administrator only): search, verify the chain, export (audited)."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi import Query as Param
from fastapi.responses import StreamingResponse

from api.deps import CurrentActor, RawStoreDep
from api.errors import store_errors
from api.params import CursorDep, Limit, TimeRangeDep
from api.schemas.audit import AuditList, AuditVerify
from api.security import allow
from watchkeeper import codec
from watchkeeper.store import audit as chain
from watchkeeper.store.base import Query

router = APIRouter(prefix="/audit", tags=["audit"])

AUDITORS = allow("audit_admin")
Name = Annotated[str | None, Param(min_length=1, max_length=128)]


@router.get("", response_model=AuditList, summary="Search the audit trail, newest first",
            dependencies=[AUDITORS])
def list_audit(store: RawStoreDep, span: TimeRangeDep, cursor: CursorDep,
               action: Name = None, user: Name = None,
               outcome: Literal["success", "failure"] | None = None, limit: Limit = 100):
    terms = {"event.action": [action], "user.name": [user], "event.outcome": [outcome]}
    query = Query(since=span.since, until=span.until, limit=limit, cursor=cursor,
                  terms={k: v for k, v in terms.items() if v[0] is not None})
    with store_errors():
        page = store.search("audit", query)
    return AuditList(items=page.items, total=page.total, next_cursor=page.next_cursor)


@router.get("/verify", response_model=AuditVerify, summary="Check the hash chain",
            dependencies=[AUDITORS])
def verify_audit(store: RawStoreDep):
    verdict = chain.verify(store)
    return AuditVerify(ok=verdict.ok, checked=verdict.checked, broken_seq=verdict.broken_seq,
                       broken_id=verdict.broken_id, reason=verdict.reason)


@router.get("/export", summary="Every record in chain order, one JSON per line (audited)",
            response_class=StreamingResponse, dependencies=[AUDITORS],
            responses={200: {"content": {"application/x-ndjson": {}}}})
def export_audit(store: RawStoreDep, span: TimeRangeDep, actor: CurrentActor):
    store.append_audit(chain.audit_record("audit.export", actor, message=(
        f"export since={span.since} until={span.until}")))
    store.refresh("audit")
    lines = (codec.encode(doc) + b"\n" for doc in chain.iter_audit(store, since=span.since,
                                                                  until=span.until))
    return StreamingResponse(lines, media_type="application/x-ndjson")

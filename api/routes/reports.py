"""Compliance reports (reports/ generates them; `watchkeeper report`, schedules): list, one
report's metadata, the PDF. Tenancy: a report belongs to the site whose subtree it covers, so
an officer bound to a county sees that county's reports and not the city's (404).

Roles: analysts and responders (their subtree's reports) and the security administrator, who
answers for the MLPS checks (审核和检查). The audit administrator is not on these routes: the
three administrators (三员) share no route, and a compliance officer gets a security_admin
or analyst account bound to the subtree they report on (docs/reports.md).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Response
from fastapi import Query as Param

from api.deps import StoreDep
from api.errors import store_errors
from api.params import CursorDep, Limit
from api.schemas.reports import ReportList, ReportPublic
from api.security import READ_ROLES, allow
from watchkeeper.store.reports import list_reports, pdf_bytes, summary

router = APIRouter(prefix="/reports", tags=["reports"])
REPORT_ROLES = READ_ROLES
ReportId = Annotated[str, Path(max_length=160)]


@router.get("", response_model=ReportList, summary="Stored reports, newest first",
            responses={400: {"description": "Bad cursor"}}, dependencies=[allow(*REPORT_ROLES)])
def list_stored(store: StoreDep, cursor: CursorDep, limit: Limit = 50,
                type: Annotated[Literal["daily", "weekly", "monthly", "incident"] | None,
                                Param(description="Report type")] = None):
    with store_errors():
        page = list_reports(store, type, limit=limit, cursor=cursor)
    return ReportList(items=[summary(d) for d in page.items], total=page.total,
                      next_cursor=page.next_cursor)


def _one(store, report_id: str) -> dict:
    with store_errors():
        found = store.get_by_ids("reports", [report_id])
    if not found:
        raise HTTPException(404, f"no report {report_id}")
    return found[0]


@router.get("/{report_id}", response_model=ReportPublic, responses={404: {}},
            dependencies=[allow(*REPORT_ROLES)])
def get_report(report_id: ReportId, store: StoreDep):
    return summary(_one(store, report_id))


@router.get("/{report_id}/pdf", responses={404: {}, 200: {"content": {"application/pdf": {}}}},
            response_class=Response, dependencies=[allow(*REPORT_ROLES)])
def download_pdf(report_id: ReportId, store: StoreDep):
    doc = _one(store, report_id)
    info = summary(doc)
    return Response(pdf_bytes(doc), media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{info["id"]}.pdf"',
        "X-Report-SHA256": info["sha256"] or ""})

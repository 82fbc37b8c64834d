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

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi import Query as Param

from api.deps import CurrentActor, RawStoreDep, StoreDep
from api.errors import store_errors
from api.params import CursorDep, Limit
from api.schemas.reports import ReportCreate, ReportList, ReportPublic
from api.security import READ_ROLES, CurrentPrincipal, allow
from watchkeeper.store.audit import audit_record
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
def download_pdf(report_id: ReportId, store: StoreDep, raw: RawStoreDep):
    doc = _one(store, report_id)          # tenancy: outside the subtree = 404
    info = summary(doc)
    try:
        pdf = pdf_bytes(raw, doc)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{info["id"]}.pdf"',
        "X-Report-SHA256": info["sha256"] or ""})


@router.post("", response_model=ReportPublic, status_code=201, dependencies=[allow(*REPORT_ROLES)],
             summary="Generate a report now (synchronous: a few seconds) and store it",
             responses={404: {"description": "Site or incident outside your subtree"},
                        422: {"description": "Bad period or missing incident"},
                        503: {"description": "This process does not generate reports"}})
def create_report(body: ReportCreate, request: Request, store: StoreDep, raw: RawStoreDep,
                  principal: CurrentPrincipal, actor: CurrentActor):
    generator = getattr(request.app.state, "report_generator", None)
    if generator is None:
        raise HTTPException(503, "report generation is not configured in this process "
                                 "(use `watchkeeper report` or the scheduler)")
    site = body.site or principal.site
    if store.sites is not None and site not in store.sites:
        raise HTTPException(404, f"no site {site!r} in your subtree")
    try:
        doc = generator(report_type=body.type, site=site, period=body.period,
                        incident_id=body.incident_id, lang=body.lang, actor=actor)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    except RuntimeError as exc:     # templates that never worked, the store down
        raise HTTPException(503, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, [{"type": "value_error", "loc": ["body"], "msg": str(exc)}]) \
            from None
    info = summary(doc)
    raw.append_audit(audit_record("report.generate", actor, object_kind="report",
                                  object_id=info["id"], message=f"{body.type} {info['period']} "
                                  f"site={site} sha256={info['sha256']}"))
    return info

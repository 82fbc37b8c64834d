"""Audit completeness and integrity (8.1.3.5 b–c, 8.1.4.3): records in the period, their field
coverage (time, subject, type, outcome) and the whole hash chain verified
(watchkeeper/store/audit.py). The audit trail is deployment-wide, not per site."""
from __future__ import annotations

from reports.context import ReportContext, get
from reports.model import Row, SectionResult
from watchkeeper.store.audit import iter_audit, verify
from watchkeeper.store.base import Query

KEY = "audit"
REPORT_TYPES = ("weekly", "monthly")
REQUIRED = {"time": "@timestamp", "subject": "user.name", "type": "event.action",
            "outcome": "event.outcome"}


def build(ctx: ReportContext) -> SectionResult:
    ctx.store.refresh("audit")
    records = ctx.store.search("audit", Query(since=ctx.period.start, until=ctx.period.end,
                                              limit=1)).total
    missing = _missing_fields(ctx)
    verdict = verify(ctx.store)
    data = {"records": records, "missing": missing,
            "complete": records - max(missing.values(), default=0),
            "chain_checked": verdict.checked, "chain_ok": verdict.ok,
            "broken_seq": verdict.broken_seq, "broken_reason": verdict.reason}
    rows = [
        Row("8.1.4.3", "pass" if records else "gap",
            "audit.recorded" if records else "audit.none", {"n": records}),
        Row("8.1.3.5b", "pass" if not any(missing.values()) else "gap",
            "audit.fields_ok" if not any(missing.values()) else "audit.fields_missing",
            {"n": records, "missing": sum(missing.values())}),
        Row("8.1.3.5c", "pass" if verdict.ok else "gap",
            "audit.chain_ok" if verdict.ok else "audit.chain_broken",
            {"n": verdict.checked, "seq": verdict.broken_seq, "why": verdict.reason}),
    ]
    return SectionResult(KEY, rows, data)


def _missing_fields(ctx: ReportContext) -> dict[str, int]:
    """One pass over the period's audit records (the chain walk reads them all anyway)."""
    missing = dict.fromkeys(REQUIRED, 0)
    for record in iter_audit(ctx.store, since=ctx.period.start, until=ctx.period.end):
        for name, dotted in REQUIRED.items():
            value = get(record, dotted)
            if name == "outcome":
                value = value or get(record, "watchkeeper.audit.outcome")
            if not value:
                missing[name] += 1
    return missing

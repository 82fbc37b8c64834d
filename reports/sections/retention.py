"""Log retention (8.1.5.4 d; Cybersecurity Law Art. 23, formerly 21): per source (dataset),
the oldest record held against six calendar months before the period's end."""
from __future__ import annotations

from reports.context import ReportContext
from reports.model import Row, SectionResult
from reports.periods import local_time
from watchkeeper import timeutil
from watchkeeper.store.base import Query

KEY = "retention"
REPORT_TYPES = ("weekly", "monthly")


def build(ctx: ReportContext) -> SectionResult:
    months = ctx.settings.retention_months
    cutoff = timeutil.months_before(ctx.period.end, months)
    sources = [_source(ctx, b.key, b.count, cutoff)
               for b in ctx.scoped.terms("events", "event.dataset", Query(until=ctx.period.end),
                                         100)]
    data = {"months": months, "cutoff": local_time(cutoff, ctx.period.zone),
            "sources": sources, "configured_months": ctx.configured_retention_months}
    rows = []
    if ctx.configured_retention_months is not None and ctx.configured_retention_months < months:
        rows.append(Row("8.1.5.4d", "gap", "retention.config_short",
                        {"configured": ctx.configured_retention_months, "months": months}))
    short = [s for s in sources if not s["held"]]
    if not sources:
        rows.append(Row("8.1.5.4d", "gap", "retention.no_data", {}))
    elif short:
        rows.append(Row("8.1.5.4d", "gap", "retention.short",
                        {"sources": "、".join(s["dataset"] for s in short), "months": months}))
    else:
        rows.append(Row("8.1.5.4d", "pass", "retention.ok", {"months": months}))
    return SectionResult(KEY, rows, data)


def _source(ctx: ReportContext, dataset: str, count: int, cutoff: float) -> dict:
    oldest_page = ctx.scoped.search("events", Query(terms={"event.dataset": [dataset]},
                                                    until=ctx.period.end, limit=1, order="asc"))
    oldest = timeutil.parse(oldest_page.items[0]["@timestamp"]) if oldest_page.items else None
    return {"dataset": dataset, "count": count,
            "oldest": local_time(oldest, ctx.period.zone) if oldest else ctx.word("no_data"),
            "days": int((ctx.period.end - oldest) // 86400) if oldest else 0,
            "held": oldest is not None and oldest <= cutoff}

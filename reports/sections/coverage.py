"""Coverage and collector health (8.1.5.4 a–c): which collectors reported, how much of the
period each one was heard from (hours with a status document, counted by the store), its last
counters, and which inventory sites in scope sent no data at all."""
from __future__ import annotations

from reports.context import ReportContext, get
from reports.model import Row, SectionResult
from reports.periods import local_time
from watchkeeper import timeutil
from watchkeeper.status import DATASET as COLLECTOR_DATASET

KEY = "coverage"
REPORT_TYPES = ("daily", "weekly", "monthly")
DROP_COUNTERS = ("dropped", "kernel_drops", "malformed", "rejected")


def build(ctx: ReportContext) -> SectionResult:
    hours = max(1, round((ctx.period.end - ctx.period.start) / 3600))
    collectors = [_collector(ctx, b.key, hours)
                  for b in ctx.terms("events", "observer.name", 200,
                                     event__dataset=[COLLECTOR_DATASET])]
    seen_sites = {b.key for b in ctx.terms("events", "labels.site", 1000)}
    in_scope = ctx.scope_sites()
    silent = [{"key": s, "name": ctx.site_name(s)} for s in in_scope if s not in seen_sites]
    data = {"collectors": collectors, "hours": hours,
            "events": ctx.count("events"),
            "sites_in_scope": len(in_scope), "sites_reporting": len(in_scope) - len(silent),
            "silent_sites": silent}
    rows = [Row("8.1.5.4a", "na", "coverage.management_zone", {}),
            Row("8.1.5.4b", "na", "coverage.management_path", {}),
            _monitoring_row(data)]
    return SectionResult(KEY, rows, data)


def _collector(ctx: ReportContext, observer: str, hours: int) -> dict:
    heard = ctx.scoped.date_histogram("events", 3600, ctx.query(
        terms={"event.dataset": [COLLECTOR_DATASET], "observer.name": [observer]}))
    last = ctx.scoped.search("events", ctx.query(
        terms={"event.dataset": [COLLECTOR_DATASET], "observer.name": [observer]}, limit=1))
    doc = last.items[0] if last.items else {}
    counters = get(doc, "watchkeeper.collector.counters", {}) or {}
    last_seen = timeutil.parse(doc["@timestamp"]) if doc else None
    stale = last_seen is None or min(ctx.now, ctx.period.end) - last_seen > \
        ctx.settings.collector_stale_seconds
    return {"name": observer, "collector": get(doc, "watchkeeper.collector.name", ""),
            "site": get(doc, "labels.site") or "",
            "availability": round(100 * len(heard) / hours, 1),
            "last_seen": local_time(last_seen, ctx.period.zone) if last_seen else ctx.word("no_data"),
            "drops": sum(int(counters.get(k, 0) or 0) for k in DROP_COUNTERS),
            "down": stale}


def _monitoring_row(data: dict) -> Row:
    if not data["collectors"]:
        return Row("8.1.5.4c", "gap", "coverage.no_collectors", {})
    down = [c["name"] for c in data["collectors"] if c["down"]]
    if down or data["silent_sites"]:
        return Row("8.1.5.4c", "gap", "coverage.partial",
                   {"down": "、".join(down) or "0", "silent": len(data["silent_sites"])})
    return Row("8.1.5.4c", "pass", "coverage.ok", {"n": len(data["collectors"])})

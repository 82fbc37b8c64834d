"""Event analysis and incidents (8.1.5.4 f, 8.1.10.12, 2025 reporting measures): incidents by
emergency level (counted by the store) and, for level III and above, whether each was reported
within its deadline: on time, late, or still open."""
from __future__ import annotations

from reports.clock import REPORTABLE_LEVELS, incident_clock
from reports.context import OPEN_INCIDENT_STATUSES, ReportContext, get
from reports.model import Row, SectionResult
from reports.periods import local_time

KEY = "incidents"
REPORT_TYPES = ("daily", "weekly", "monthly")
LEVELS = ("I", "II", "III", "IV")
MAX_LISTED = 500      # reportable incidents are few; a cap keeps a runaway month bounded


def build(ctx: ReportContext) -> SectionResult:
    levels = {b.key: b.count for b in ctx.terms("incidents", "watchkeeper.incident.level", 10)}
    total = ctx.count("incidents")
    clocks = _clocks(ctx)
    states = {s: sum(1 for c in clocks if c["state"] == s)
              for s in ("on_time", "late", "open_overdue", "open")}
    data = {"total": total, "previous_total": ctx.count("incidents", ctx.previous),
            "levels": [{"level": lv, "count": levels.get(lv, 0)} for lv in LEVELS],
            "unlevelled": total - sum(levels.get(lv, 0) for lv in LEVELS),
            "open": ctx.count("incidents", watchkeeper__incident__status=OPEN_INCIDENT_STATUSES),
            "reportable": len(clocks), "clock": states, "clocks": clocks}
    return SectionResult(KEY, _rows(data), data)


def _clocks(ctx: ReportContext) -> list[dict]:
    query = ctx.query(terms={"watchkeeper.incident.level": list(REPORTABLE_LEVELS)})
    rows = []
    for doc in ctx.scoped.scan("incidents", query,
                                     limit=MAX_LISTED):
        clock = incident_clock(doc, ctx.settings.report_hours, ctx.now)
        rows.append({"id": get(doc, "event.id"), "level": clock.level,
                     "entity": get(doc, "watchkeeper.incident.entity", ""),
                     "site": ctx.site_name(get(doc, "labels.site")),
                     "due": local_time(clock.due, ctx.period.zone) if clock.due else ctx.word("no_data"),
                     "reported": local_time(clock.reported, ctx.period.zone)
                     if clock.reported else ctx.word("not_reported"),
                     "reported_to": get(doc, "watchkeeper.incident.reported_to") or "",
                     "state": clock.state})
    return rows


def _rows(data: dict) -> list[Row]:
    rows = [Row("8.1.5.4f", "pass" if data["unlevelled"] == 0 else "gap",
                "incidents.graded" if data["unlevelled"] == 0 else "incidents.ungraded",
                {"n": data["total"], "ungraded": data["unlevelled"]})]
    clock = data["clock"]
    if not data["reportable"]:
        rows.append(Row("measures2025", "na", "incidents.none_reportable", {}))
    elif clock["late"] or clock["open_overdue"]:
        rows.append(Row("measures2025", "gap", "incidents.late",
                        {"n": data["reportable"], "late": clock["late"],
                         "overdue": clock["open_overdue"]}))
    else:
        rows.append(Row("measures2025", "pass", "incidents.on_time",
                        {"n": data["reportable"], "open": clock["open"]}))
    return rows

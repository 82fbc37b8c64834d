"""Open high-severity items at the period's end: high/critical alerts not yet closed and open
incidents of level III and above (8.1.5.4 f: every security event analysed)."""
from __future__ import annotations

from reports.context import HIGH_SEVERITIES, OPEN_ALERT_STATUSES, OPEN_INCIDENT_STATUSES, \
    ReportContext, get
from reports.model import Row, SectionResult
from reports.periods import local_time
from watchkeeper import timeutil
from watchkeeper.store.base import Query

KEY = "open_items"
REPORT_TYPES = ("daily", "weekly", "monthly")
LISTED = 10


def build(ctx: ReportContext) -> SectionResult:
    alerts = ctx.scoped.search("alerts", Query(until=ctx.period.end, limit=LISTED, terms={
        "event.severity": HIGH_SEVERITIES, "watchkeeper.alert.status": OPEN_ALERT_STATUSES}))
    incidents = ctx.scoped.search("incidents", Query(until=ctx.period.end, limit=LISTED, terms={
        "watchkeeper.incident.level": ["I", "II", "III"],
        "watchkeeper.incident.status": OPEN_INCIDENT_STATUSES}))
    data = {"alerts_total": alerts.total, "incidents_total": incidents.total,
            "alerts": [_alert(ctx, a) for a in alerts.items],
            "incidents": [{"id": get(i, "event.id"), "level": get(i, "watchkeeper.incident.level"),
                           "entity": get(i, "watchkeeper.incident.entity", ""),
                           "status": get(i, "watchkeeper.incident.status", "")}
                          for i in incidents.items]}
    open_count = alerts.total + incidents.total
    row = Row("8.1.5.4f", "pass" if not open_count else "gap",
              "open.none" if not open_count else "open.some",
              {"alerts": alerts.total, "incidents": incidents.total})
    return SectionResult(KEY, [row], data)


def _alert(ctx: ReportContext, doc: dict) -> dict:
    return {"time": local_time(timeutil.parse(doc["@timestamp"]), ctx.period.zone),
            "category": get(doc, "watchkeeper.alert.category", ""),
            "severity": get(doc, "event.severity"), "source": get(doc, "source.ip", ""),
            "target": get(doc, "destination.ip", ""),
            "status": get(doc, "watchkeeper.alert.status", ""),
            "site": ctx.site_name(get(doc, "labels.site"))}

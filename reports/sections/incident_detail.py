"""One incident, for the statutory reporting path (8.1.10.12; 2025 measures): level and warning
colour, GB/T 20986 category, discovery, deadline and report times, and its alerts in order."""
from __future__ import annotations

from reports.clock import incident_clock
from reports.context import ReportContext, get
from reports.model import Row, SectionResult
from reports.periods import local_time
from watchkeeper import timeutil

KEY = "incident_detail"
REPORT_TYPES = ("incident",)
COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
MAX_ALERTS = 200


class IncidentNotFound(LookupError):
    pass


def load_incident(ctx: ReportContext) -> dict:
    found = ctx.scoped.get_by_ids("incidents", [ctx.incident_id or ""])
    if not found:       # outside the subtree or absent: the same answer (tenancy)
        raise IncidentNotFound(f"no incident {ctx.incident_id!r} in the scope of this report")
    return found[0]


def build(ctx: ReportContext) -> SectionResult:
    doc = load_incident(ctx)
    info = get(doc, "watchkeeper.incident", {}) or {}
    clock = incident_clock(doc, ctx.settings.report_hours, ctx.now)
    alert_ids = list(info.get("alerts", []))[:MAX_ALERTS]
    alerts = sorted(ctx.scoped.get_by_ids("alerts", alert_ids), key=lambda a: a["@timestamp"])
    zone = ctx.period.zone

    def shown(value) -> str:
        return _shown(value, zone) or ctx.word("no_data")
    data = {
        "id": get(doc, "event.id"), "entity": info.get("entity", ""),
        "level": info.get("level") or ctx.word("no_data"),
        "colour": info.get("warning_colour") or COLOURS.get(info.get("level"), ""),
        "status": info.get("status") or ctx.word("no_data"), "site": ctx.site_name(get(doc, "labels.site")),
        "org_type": info.get("org_type") or "other",
        "gbt_code": info.get("gbt_code") or "", "gbt_name": info.get("gbt_name") or "",
        "categories": info.get("categories", []), "alert_count": info.get("alert_count", 0),
        "first_seen": shown(info.get("first_seen")),
        "last_seen": shown(info.get("last_seen")),
        "graded_at": shown(info.get("graded_at")),
        "due": local_time(clock.due, zone) if clock.due else ctx.word("not_applicable"),
        "reported": local_time(clock.reported, zone) if clock.reported else ctx.word("not_reported"),
        "reported_to": info.get("reported_to") or ctx.word("no_data"), "clock": clock.state,
        "alerts": [{"time": shown(a["@timestamp"]),
                    "category": get(a, "watchkeeper.alert.category", ""),
                    "severity": get(a, "event.severity"), "source": get(a, "source.ip", ""),
                    "target": get(a, "destination.ip", ""), "message": _message(a, ctx.lang)}
                   for a in alerts],
    }
    return SectionResult(KEY, [_clock_row(clock.state)], data)


def _shown(value, zone: str) -> str | None:
    try:
        return local_time(timeutil.parse(value), zone) if isinstance(value, str) else None
    except ValueError:
        return None


def _clock_row(state: str) -> Row:
    status = {"on_time": "pass", "not_required": "na", "open": "pass"}.get(state, "gap")
    return Row("measures2025", status, f"clock.{state}", {})


def _message(alert: dict, lang: str) -> str:
    """The detector's zh-CN wording in a Chinese report; the ECS `message` otherwise (and for
    alerts without one, e.g. Suricata's)."""
    zh = get(alert, "watchkeeper.alert.message_zh") if lang == "zh-CN" else None
    return zh or alert.get("message", "")

"""Intrusion detection (8.1.3.3, 8.1.4.4): alerts by GB/T 20986 category and severity, the
trend against the previous period, top sources, targets and sites; all counted by the store."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from reports.charts import bar_chart
from reports.context import OPEN_ALERT_STATUSES, ReportContext
from reports.model import Row, SectionResult
from watchkeeper.taxonomy import CATEGORY_INFO

KEY = "intrusion"
REPORT_TYPES = ("daily", "weekly", "monthly")


def build(ctx: ReportContext) -> SectionResult:
    total = ctx.count("alerts")
    previous = ctx.count("alerts", ctx.previous)
    categories = _categories(ctx)
    severities = {b.key: b.count for b in ctx.terms("alerts", "event.severity", 10)}
    high = ctx.count("alerts", event__severity=[3, 4])
    high_unhandled = ctx.count("alerts", event__severity=[3, 4],
                               watchkeeper__alert__status=["new"])
    data = {
        "total": total, "previous_total": previous, "change": _change(total, previous),
        "categories": categories,
        "severities": [{"severity": s, "count": severities.get(s, 0)} for s in (4, 3, 2, 1)],
        "high": high, "high_unhandled": high_unhandled,
        "open": ctx.count("alerts", watchkeeper__alert__status=OPEN_ALERT_STATUSES),
        "top_sources": _top(ctx, "source.ip"), "top_targets": _top(ctx, "destination.ip"),
        "top_sites": [{"key": b.key, "name": ctx.site_name(b.key), "count": b.count}
                      for b in ctx.terms("alerts", "labels.site", 10)],
        "per_day": _per_day(ctx),
    }
    charts = {"per_day": bar_chart([d["day"][5:] for d in data["per_day"]],
                                   [d["count"] for d in data["per_day"]],
                                   ylabel="告警数（条）" if ctx.lang == "zh-CN" else "alerts")}
    return SectionResult(KEY, _rows(ctx, data), data, charts)


def _categories(ctx: ReportContext) -> list[dict]:
    now = {b.key: b.count for b in ctx.terms("alerts", "watchkeeper.alert.category", 50)}
    before = {b.key: b.count for b in ctx.terms("alerts", "watchkeeper.alert.category", 50,
                                                ctx.previous)}
    rows = []
    for category in sorted(set(now) | set(before), key=lambda c: (-now.get(c, 0), c)):
        info = CATEGORY_INFO.get(category)
        rows.append({"category": category, "count": now.get(category, 0),
                     "previous": before.get(category, 0),
                     "change": _change(now.get(category, 0), before.get(category, 0)),
                     "gbt_code": info.gbt_code if info else "", "gbt_name": info.gbt_name
                     if info else ""})
    return rows


def _top(ctx: ReportContext, field_name: str) -> list[dict]:
    return [{"key": b.key, "count": b.count} for b in ctx.terms("alerts", field_name, 10)]


def _per_day(ctx: ReportContext) -> list[dict]:
    """Hourly buckets from the store folded into local (Beijing) calendar days: UTC-aligned
    day buckets would split a Beijing day at 08:00."""
    zone = ZoneInfo(ctx.period.zone)
    days = {d.isoformat(): 0 for d in ctx.period.local_days()}
    for bucket in ctx.scoped.date_histogram("alerts", 3600, ctx.query()):
        day = datetime.fromtimestamp(float(bucket.key), zone).date().isoformat()
        if day in days:
            days[day] += bucket.count
    return [{"day": d, "count": n} for d, n in days.items()]


def _change(now: int, before: int) -> str:
    if before == 0:
        return "—" if now == 0 else "+∞"
    return f"{(now - before) * 100 / before:+.0f}%"


def _rows(ctx: ReportContext, data: dict) -> list[Row]:
    monitored = ctx.count("events", event__dataset=["watchkeeper.collector"]) > 0
    if data["total"]:
        detect = Row("8.1.3.3", "pass", "intrusion.recorded", {"n": data["total"]})
    elif monitored:
        detect = Row("8.1.3.3", "pass", "intrusion.none_seen", {})
    else:
        detect = Row("8.1.3.3", "gap", "intrusion.no_monitoring", {})
    if data["high"] == 0:
        alarm = Row("8.1.4.4", "na", "intrusion.no_high", {})
    elif data["high_unhandled"]:
        alarm = Row("8.1.4.4", "gap", "intrusion.high_unhandled",
                    {"n": data["high"], "open": data["high_unhandled"]})
    else:
        alarm = Row("8.1.4.4", "pass", "intrusion.high_handled", {"n": data["high"]})
    return [detect, alarm]

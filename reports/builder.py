"""Build a report: run each registered section for the report type, in order, over the
tenant-scoped store."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from reports.context import ReportContext
from reports.model import Report
from reports.periods import Period, period_of
from reports.sections import incident_detail, sections_for
from reports.settings import ReportSettings
from watchkeeper import schema, timeutil
from watchkeeper.assets import Inventory
from watchkeeper.identity import ROOT
from watchkeeper.store.base import Store
from watchkeeper.store.scoped import ScopedStore, subtree

REPORT_TYPES = ("daily", "weekly", "monthly", "incident")


@dataclass
class ReportRequest:
    report_type: str
    site: str = ROOT                 # root of the subtree covered
    period: Period | None = None     # required for daily/weekly/monthly
    incident_id: str | None = None   # required for incident
    lang: str = "zh-CN"
    schedule: str | None = None


def scoped_store(store: Store, inventory: Inventory, site: str) -> ScopedStore:
    if site != ROOT and site not in inventory.sites:
        raise ValueError(f"site {site!r} is not a site of the inventory "
                         f"({', '.join(sorted(inventory.sites)) or 'none configured'})")
    tree = {s.id: s.parent for s in inventory.sites.values()}
    return ScopedStore(store, subtree(tree, site))


def build_report(store: Store, request: ReportRequest, settings: ReportSettings,
                 inventory: Inventory | None = None, now: float | None = None,
                 configured_retention_months: int | None = None) -> Report:
    if request.report_type not in REPORT_TYPES:
        raise ValueError(f"report type {request.report_type!r}: one of {', '.join(REPORT_TYPES)}")
    inventory = inventory or Inventory()
    now = time.time() if now is None else now
    scoped = scoped_store(store, inventory, request.site)
    ctx = ReportContext(store=store, scoped=scoped,
                        site=None if request.site == ROOT else request.site,
                        period=request.period or _incident_period(scoped, request, settings),
                        now=now, settings=settings, inventory=inventory,
                        incident_id=request.incident_id, lang=request.lang,
                        configured_retention_months=configured_retention_months)
    for module in sections_for(request.report_type):
        ctx.results.append(module.build(ctx))
    return Report(
        report_id=report_id(request, ctx.period, now), report_type=request.report_type,
        site=ctx.site, site_name=ctx.site_name(ctx.site),
        period_label=request.incident_id or ctx.period.label,
        period_shown=ctx.period.shown(request.lang), period_start=ctx.period.start,
        period_end=ctx.period.end, generated_at=now, lang=request.lang,
        sections=ctx.results, incident_id=request.incident_id)


def _incident_period(scoped: ScopedStore, request: ReportRequest,
                     settings: ReportSettings) -> Period:
    """An incident report's period is the local day the incident started on."""
    if request.report_type != "incident" or not request.incident_id:
        raise ValueError(f"a {request.report_type} report needs --period"
                         if request.report_type != "incident" else
                         "an incident report needs --incident ID")
    found = scoped.get_by_ids("incidents", [request.incident_id])
    if not found:
        raise incident_detail.IncidentNotFound(
            f"no incident {request.incident_id!r} in the scope of this report")
    start = timeutil.parse(found[0]["@timestamp"])
    day = datetime.fromtimestamp(start, ZoneInfo(settings.timezone)).date()
    return period_of("daily", day, settings.timezone)


def report_id(request: ReportRequest, period: Period, now: float) -> str:
    """Readable and unique: WK-<type>-<period>-<site>-<short hash of the generation>."""
    site = request.site if request.site != ROOT else "all"
    label = request.incident_id[:12] if request.incident_id else period.label
    digest = schema.stable_id("report", request.report_type, site, label, request.lang,
                              request.schedule or "", repr(now))[:8]
    return f"WK-{request.report_type}-{label}-{site}-{digest}".upper().replace("_", "-")

"""Top risky assets and sites with their MLPS levels: targets and sites of high and critical
alerts in the period (counted by the store), looked up in the asset inventory."""
from __future__ import annotations

from reports.context import ReportContext
from reports.model import SectionResult

KEY = "assets"
REPORT_TYPES = ("weekly", "monthly")


def build(ctx: ReportContext) -> SectionResult:
    targets = []
    for bucket in ctx.terms("alerts", "destination.ip", 10, event__severity=[3, 4]):
        info = ctx.inventory.lookup(str(bucket.key))
        targets.append({"ip": bucket.key, "count": bucket.count,
                        "name": (info.asset.name if info else None) or ctx.word("unregistered"),
                        "site": ctx.site_name(info.asset.site) if info else "",
                        "mlps_level": info.asset.mlps_level if info else ctx.word("no_data"),
                        "criticality": info.asset.criticality if info else ""})
    sites = [{"key": b.key, "name": ctx.site_name(b.key), "count": b.count}
             for b in ctx.terms("alerts", "labels.site", 10, event__severity=[3, 4])]
    return SectionResult(KEY, [], {"targets": targets, "sites": sites})

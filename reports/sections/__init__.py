"""Report sections: one module each (KEY, REPORT_TYPES, build(ctx) -> SectionResult).

Adding a section = one new module here + one line in SECTIONS (+ its template
templates/sections/<KEY>.html.j2, and its clauses in clauses.yaml). Order = order in the report;
recommendations come last because they read the gaps found by the sections before them.
"""
from __future__ import annotations

from reports.sections import (assets, audit, coverage, incident_detail, incidents, intrusion,
                              open_items, recommendations, response, retention, suppressions)

SECTIONS = (
    incident_detail,
    coverage,
    retention,
    audit,
    intrusion,
    incidents,
    response,
    assets,
    open_items,
    suppressions,
    recommendations,
)


def sections_for(report_type: str) -> list:
    return [module for module in SECTIONS if report_type in module.REPORT_TYPES]

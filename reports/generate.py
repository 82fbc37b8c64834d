"""Build, render and store one report: the one path used by the CLI, the API and schedules."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from reports.builder import ReportRequest, build_report
from reports.model import Report
from reports.render import render_html, render_pdf, report_summary
from reports.settings import ReportSettings
from reports.templates import TemplateProblem, TemplateSet
from watchkeeper.assets import Inventory
from watchkeeper.store.base import Store
from watchkeeper.store.reports import StoredReport, save_report

log = logging.getLogger("watchkeeper.reports")


@dataclass
class Generated:
    report: Report
    html: str
    pdf: bytes
    document: dict
    problems: list[TemplateProblem] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return self.document["watchkeeper"]["report"]["sha256"]


def generate(store: Store, request: ReportRequest, settings: ReportSettings,
             templates: TemplateSet, inventory: Inventory | None = None,
             now: float | None = None, generated_by: str = "cli",
             configured_retention_months: int | None = None) -> Generated:
    if inventory is not None:
        inventory.reload()          # a store-backed inventory as it is now (no-op for a file's)
    report = build_report(store, request, settings, inventory, now,
                          configured_retention_months=configured_retention_months)
    html = render_html(report, templates)
    problems = list(templates.problems)
    pdf = render_pdf(html)
    stored = StoredReport(
        report_id=report.report_id, report_type=report.report_type,
        period=report.period_label, period_start=report.period_start,
        period_end=report.period_end, site=report.site, pdf=pdf, html=html, lang=report.lang,
        schedule=request.schedule, incident_id=report.incident_id, generated_by=generated_by,
        sections=report_summary(report))
    document = save_report(store, stored, now=report.generated_at)
    log.info("report %s stored (%d bytes, sha256 %s)", report.report_id, len(pdf),
             document["watchkeeper"]["report"]["sha256"])
    return Generated(report, html, pdf, document, problems)

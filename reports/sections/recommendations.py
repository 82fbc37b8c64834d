"""Remediation recommendations (整改建议): one per clause found with a gap in the sections
built before this one; the wording is the clause's `recommendation` in clauses.yaml."""
from __future__ import annotations

from reports.context import ReportContext
from reports.model import SectionResult

KEY = "recommendations"
REPORT_TYPES = ("daily", "weekly", "monthly", "incident")


def build(ctx: ReportContext) -> SectionResult:
    gaps = list(dict.fromkeys(row.clause for result in ctx.results for row in result.rows
                              if row.status == "gap"))
    return SectionResult(KEY, [], {"gap_clauses": gaps})

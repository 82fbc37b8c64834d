"""What a report is made of: sections of rows, each row evidencing one clause."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["pass", "gap", "na"]


@dataclass
class Row:
    """One clause checked: pass / gap / not applicable, and why.

    `reason` is a key of the `reasons:` catalogue in clauses.yaml and `args` fills its
    placeholders, so the wording is edited there, not here."""
    clause: str
    status: Status
    reason: str
    args: dict = field(default_factory=dict)


@dataclass
class SectionResult:
    key: str                                    # also the template name: sections/<key>.html.j2
    rows: list[Row] = field(default_factory=list)
    data: dict = field(default_factory=dict)    # figures and tables the template shows
    charts: dict[str, str] = field(default_factory=dict)   # name -> SVG data: URI


@dataclass
class Report:
    report_id: str
    report_type: str
    site: str | None
    site_name: str
    period_label: str
    period_shown: str
    period_start: float
    period_end: float
    generated_at: float
    lang: str
    sections: list[SectionResult]
    incident_id: str | None = None

    def rows(self) -> list[Row]:
        return [row for section in self.sections for row in section.rows]

    def figures(self) -> dict:
        """Per-section data, JSON-safe (stored with the report for machine checks)."""
        return {s.key: s.data for s in self.sections}

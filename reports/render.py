"""Report -> HTML (Jinja2 templates, clause wording from clauses.yaml) -> PDF (WeasyPrint).

Section templates are rendered one by one and then placed in report.html.j2, so a broken
section template falls back to its own last good version without taking the others along.
An English report uses `sections/<key>.en.html.j2` where one exists.
"""
from __future__ import annotations

from dataclasses import asdict

from markupsafe import Markup

from reports.model import Report, Row
from reports.periods import local_time
from reports.templates import TemplateSet


class _Text:
    """Looks labels, clauses and reasons up in clauses.yaml for one language."""

    def __init__(self, clauses: dict, lang: str):
        self.data, self.lang = clauses, lang

    def pick(self, entry, default: str = "") -> str:
        if isinstance(entry, dict):
            return str(entry.get(self.lang) or entry.get("zh-CN") or default)
        return default if entry is None else str(entry)

    def label(self, group: str, key) -> str:
        table = self.data["labels"].get(group, {}) or {}
        entry = table.get(key, table.get(str(key)))
        return self.pick(entry, str(key))

    def clause(self, clause_id: str) -> dict:
        entry = self.data["clauses"].get(clause_id) or {}
        return {"id": clause_id, "number": entry.get("number", clause_id),
                "title": self.pick(entry.get("title")),
                "recommendation": self.pick(entry.get("recommendation"))}

    def reason(self, row: Row) -> str:
        template = self.pick(self.data["reasons"].get(row.reason), row.reason)
        try:
            return template.format(**row.args)
        except (KeyError, IndexError, ValueError):
            return template      # an edited sentence naming an unknown figure: shown as is

    def row(self, row: Row) -> dict:
        clause = self.clause(row.clause)
        return {**clause, "status": row.status, "status_text": self.label("status", row.status),
                "reason_text": self.reason(row)}


def render_html(report: Report, templates: TemplateSet) -> str:
    templates.problems = []
    text = _Text(templates.clauses(), report.lang)
    words = {k: text.pick(v) for k, v in (text.data["labels"].get("words") or {}).items()}
    common = {"t": text.label, "clause": text.clause, "words": words, "report": report,
              "num": _num}
    templates.env.filters["num"] = _num
    sections = []
    for result in report.sections:
        html = templates.render(_section_template(templates, result.key, report.lang), **common,
                                data=result.data, charts=result.charts,
                                section_rows=[text.row(r) for r in result.rows])
        sections.append({"key": result.key, "title": text.label("sections", result.key),
                         "html": Markup(html)})
    title = text.label("report_types", report.report_type)
    page = words.get("page", "{page} / {pages}")
    page_css = '"' + page.replace("{page}", '" counter(page) "').replace(
        "{pages}", '" counter(pages) "') + '"'
    return templates.render("report.html.j2", **common, title=title, sections=sections,
                            rows=[text.row(r) for r in report.rows()], page_css=Markup(page_css),
                            generated_at=local_time(report.generated_at))


def _section_template(templates: TemplateSet, key: str, lang: str) -> str:
    localised = f"sections/{key}.{lang}.html.j2"
    return localised if lang != "zh-CN" and templates.exists(localised) else \
        f"sections/{key}.html.j2"


def _num(value) -> str:
    """12,345 (the glossary's grouping); anything not a number shown as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def render_pdf(html: str) -> bytes:
    from weasyprint import HTML   # heavy import: only when a PDF is made
    return HTML(string=html, base_url=".").write_pdf()


def report_summary(report: Report) -> dict:
    """JSON-safe figures stored with the report."""
    return {"rows": [asdict(r) for r in report.rows()], "sections": report.figures()}

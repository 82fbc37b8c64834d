"""Templates edited without code: an edited template or clause file changes the next report
without a restart; a broken one is reported with file and line while the last good version
keeps serving. HTML only (no PDF), so these are fast."""
from __future__ import annotations

import os
import shutil

import pytest

from reports.builder import ReportRequest, build_report
from reports.periods import parse_period
from reports.render import render_html
from reports.settings import ReportSettings
from reports.templates import SHIPPED, ReportTemplateError, TemplateSet
from tests.unit.reports import seed
from watchkeeper.store.sqlite import SqliteStore

NOW = seed.utc(2026, 12, 1, 2)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    store = SqliteStore(f"sqlite:///{tmp_path_factory.mktemp('tpl')}/wk.db")
    inventory = seed.seed(store)
    built = build_report(store, ReportRequest("monthly", "/", parse_period("monthly", "2026-11")),
                         ReportSettings(), inventory, NOW)
    yield built
    store.close()


def _write(path, text: str) -> None:
    """Write and move the mtime forward: two edits within one clock tick still differ."""
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    bumped = max(path.stat().st_mtime_ns, previous + 1_000_000_000)
    os.utime(path, ns=(bumped, bumped))


def test_shipped_templates_render_every_section(report):
    html = render_html(report, TemplateSet())
    for title in ("监测覆盖与采集器运行状况", "日志留存", "审计完整性与防篡改校验", "入侵检测与告警态势",
                  "安全事件与上报时限", "响应时效", "高风险资产与单位", "未关闭的高危事项",
                  "生效中的抑制规则", "整改建议"):
        assert title in html


def test_an_edited_template_changes_the_next_report_and_a_broken_one_keeps_the_last_good(
        report, tmp_path):
    custom = tmp_path / "templates"
    (custom / "sections").mkdir(parents=True)
    section = custom / "sections" / "retention.html.j2"
    _write(section, "<p>留存检查（客户版）{{ data.months }} 个月</p>")
    templates = TemplateSet(custom)
    assert "留存检查（客户版）6 个月" in render_html(report, templates)

    _write(section, "<p>第二版 {{ data.months }}</p>")
    assert "第二版 6" in render_html(report, templates)        # same TemplateSet: no restart

    _write(section, "<p>坏了</p>\n{% for x in data.sources %}\n<p>{{ x.dataset }</p>\n")
    html = render_html(report, templates)
    assert "第二版 6" in html and "坏了" not in html
    [problem] = templates.problems
    assert problem.file.endswith("sections/retention.html.j2")
    assert problem.line == 3


def test_an_unknown_variable_is_reported_with_its_line(report, tmp_path):
    custom = tmp_path / "templates"
    (custom / "sections").mkdir(parents=True)
    section = custom / "sections" / "audit.html.j2"
    _write(section, "<p>ok {{ data.records }}</p>")
    templates = TemplateSet(custom)
    render_html(report, templates)
    _write(section, "<p>line one</p>\n<p>{{ data.no_such_figure.deeper }}</p>\n")
    html = render_html(report, templates)
    assert f"ok {report.sections[2].data['records']}" in html
    [problem] = templates.problems
    assert (problem.file.endswith("audit.html.j2"), problem.line) == (True, 2)


def test_a_template_that_never_worked_fails_the_report_naming_file_and_line(report, tmp_path):
    custom = tmp_path / "templates"
    (custom / "sections").mkdir(parents=True)
    _write(custom / "sections" / "audit.html.j2", "{% if %}\n")
    with pytest.raises(ReportTemplateError, match=r"audit\.html\.j2:1"):
        render_html(report, TemplateSet(custom))


def test_clause_wording_comes_from_the_yaml_and_reloads(report, tmp_path):
    custom = tmp_path / "templates"
    custom.mkdir()
    clauses = custom / "clauses.yaml"
    shutil.copy(SHIPPED / "clauses.yaml", clauses)
    templates = TemplateSet(custom)
    assert "GB/T 22239-2019 8.1.3.3" in render_html(report, templates)

    text = clauses.read_text(encoding="utf-8")
    _write(clauses, text.replace('number: "GB/T 22239-2019 8.1.3.3"',
                                 'number: "GB/T 22239-2019 8.1.3.3（客户校正）"'))
    assert "8.1.3.3（客户校正）" in render_html(report, templates)

    _write(clauses, text + "\n  broken: [unclosed\n")
    html = render_html(report, templates)
    assert "8.1.3.3（客户校正）" in html
    [problem] = templates.problems
    assert problem.file.endswith("clauses.yaml") and problem.line is not None


def test_english_labels_come_from_the_same_clause_file(report):
    report.lang = "en"
    try:
        html = render_html(report, TemplateSet())
    finally:
        report.lang = "zh-CN"
    assert "Monthly MLPS 2.0 compliance report" in html
    assert "Centralised control: central monitoring" in html
    assert "By emergency level" in html and "按事件级别统计" not in html   # sections/*.en

"""The monthly report of a seeded dataset: every figure printed in the PDF (read back with
pdftotext) equals the store's own aggregate for the scope and period; Chinese text is drawn
with real glyphs (no missing-glyph boxes); the report is stored with its SHA-256."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap

import pytest

from reports.builder import ReportRequest
from reports.generate import generate
from reports.periods import parse_period
from reports.settings import ReportSettings
from reports.templates import TemplateSet
from tests.unit.reports import seed
from watchkeeper.store.base import Query
from watchkeeper.store.reports import pdf_bytes
from watchkeeper.store.sqlite import SqliteStore

NOW = seed.utc(2026, 12, 1, 2)          # 10:00 Beijing on 1 December
PERIOD = parse_period("monthly", "2026-11")
CATEGORY_WORDS = {"scan": "扫描探测", "brute_force": "暴力破解", "dos": "拒绝服务攻击",
                  "beaconing": "恶意回连", "exfiltration": "数据外泄", "ioc_match": "威胁情报命中"}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    store = SqliteStore(f"sqlite:///{tmp_path_factory.mktemp('monthly')}/wk.db")
    inventory = seed.seed(store)
    generated = generate(store, ReportRequest("monthly", "/", PERIOD), ReportSettings(),
                         TemplateSet(), inventory, now=NOW, configured_retention_months=6)
    pdf = tmp_path_factory.mktemp("pdf") / "monthly.pdf"
    pdf.write_bytes(generated.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    yield store, generated, pdf, text
    store.close()


def _ints_after(text: str, label: str, start: int = 0) -> list[int]:
    """Whole numbers on the first line (from `start`) that contains `label`, after it."""
    for line in text.splitlines()[start:]:
        if label in line:
            tail = line.split(label, 1)[1]
            return [int(t.replace(",", "")) for t in tail.split()
                    if re.fullmatch(r"\d[\d,]*", t)]
    raise AssertionError(f"{label!r} not in the report")


def _numbers_under(text: str, heading: str, count: int) -> list[int]:
    """The first line after `heading` that holds exactly `count` whole numbers."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if heading in line)
    for line in lines[start + 1:]:
        found = [int(t.replace(",", "")) for t in line.split() if re.fullmatch(r"\d[\d,]*", t)]
        if len(found) == count:
            return found
    raise AssertionError(f"no row of {count} numbers under {heading!r}")


def _period(**kwargs) -> Query:
    return Query(since=PERIOD.start, until=PERIOD.end, **kwargs)


def test_period_is_the_beijing_calendar_month():
    assert PERIOD.start == seed.utc(2026, 10, 31, 16)
    assert PERIOD.end == seed.utc(2026, 11, 30, 16)


def test_alert_figures_equal_the_store_aggregates(made):
    store, _, _, text = made
    total = store.search("alerts", _period(limit=1)).total
    previous = store.search("alerts", Query(since=PERIOD.previous().start, until=PERIOD.start,
                                            limit=1)).total
    assert _ints_after(text, "告警总数")[:2] == [total, previous]
    before = {b.key: b.count for b in store.terms(
        "alerts", "watchkeeper.alert.category",
        Query(since=PERIOD.previous().start, until=PERIOD.start), 50)}
    for bucket in store.terms("alerts", "watchkeeper.alert.category", _period(), 50):
        row = _ints_after(text, CATEGORY_WORDS[bucket.key])
        assert row[:2] == [bucket.count, before.get(bucket.key, 0)], bucket.key
    severities = {b.key: b.count for b in store.terms("alerts", "event.severity", _period())}
    assert _numbers_under(text, "按严重程度统计", 4) == [severities.get(s, 0) for s in (4, 3, 2, 1)]
    for bucket in store.terms("alerts", "source.ip", _period(), 10):
        assert _ints_after(text, f"{bucket.key} ")[0] == bucket.count
    high = store.search("alerts", _period(limit=1, terms={"event.severity": [3, 4]})).total
    assert _ints_after(text, "高危及严重")[0] == high


def test_incident_figures_equal_the_store_aggregates(made):
    store, _, _, text = made
    total = store.search("incidents", _period(limit=1)).total
    assert _ints_after(text, "安全事件 ")[0] == total == 4
    levels = {b.key: b.count for b in store.terms("incidents", "watchkeeper.incident.level",
                                                  _period())}
    assert _numbers_under(text, "按事件级别统计", 4) == [levels.get(lv, 0)
                                                      for lv in ("I", "II", "III", "IV")]
    # The seed's clocks: one reported in time, one late, one overdue and unreported.
    assert _numbers_under(text, "上报时限执行情况", 4) == [1, 1, 1, 0]
    open_alerts = store.search("alerts", Query(until=PERIOD.end, limit=1, terms={
        "event.severity": [3, 4],
        "watchkeeper.alert.status": ["new", "acknowledged", "investigating"]})).total
    assert _ints_after(text, "未关闭高危及严重告警")[0] == open_alerts


def test_audit_and_collector_figures_equal_the_store(made):
    store, _, _, text = made
    records = store.search("audit", _period(limit=1)).total
    chained = store.search("audit", Query(limit=1)).total
    assert records == 3 and chained == 5
    assert _ints_after(text, "本期审计记录")[0] == records
    assert _ints_after(text, "哈希链校验记录")[0] == chained
    assert "哈希链校验通过" in text
    for observer in ("sensor-a", "sensor-b"):
        hours = store.date_histogram("events", 3600, _period(terms={
            "event.dataset": ["watchkeeper.collector"], "observer.name": [observer]}))
        shown = re.search(rf"{observer}\s+capture\s+\S+\s+([\d.]+)%", text)
        assert shown and float(shown.group(1)) == round(100 * len(hours) / 720, 1)


def test_pdf_sha256_is_recorded_with_the_stored_report(made):
    store, generated, pdf, _ = made
    stored = store.get_by_ids("reports", [generated.report.report_id])[0]
    assert pdf_bytes(store, stored) == pdf.read_bytes()
    assert stored["watchkeeper"]["report"]["sha256"] == \
        hashlib.sha256(pdf.read_bytes()).hexdigest()


# -- glyphs -------------------------------------------------------------------------------------
CHINESE_PROBES = ["网络安全等级保护合规月报", "合规结论汇总", "集中管控", "入侵检测与告警态势",
                  "按事件级别统计", "整改建议"]


def missing_chinese(pdf_path) -> list[str]:
    """Chinese phrases that do not come back out of the PDF. A glyph missing from the fonts
    is drawn as .notdef (a box) with no text behind it, so the phrase is lost."""
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], check=True, capture_output=True,
                          text=True).stdout
    flat = re.sub(r"\s+", "", text)
    return [p for p in CHINESE_PROBES if p not in flat]


def test_chinese_text_is_drawn_with_an_embedded_cjk_font(made):
    _, _, pdf, _ = made
    assert missing_chinese(pdf) == []
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout.splitlines()[2:]
    assert any("WK-CJK" in line and " yes " in line for line in fonts), fonts


def test_the_glyph_check_fails_for_a_pdf_rendered_without_a_cjk_font(tmp_path):
    """Negative control: the same kind of HTML rendered where fontconfig knows only DejaVu
    (no CJK glyphs, no fallback) gives boxes, and the check above catches them."""
    conf = tmp_path / "fonts.conf"
    conf.write_text(textwrap.dedent(f"""\
        <?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">
        <fontconfig><dir>/usr/share/fonts/truetype/dejavu</dir>
        <cachedir>{tmp_path}/cache</cachedir></fontconfig>"""))
    out = tmp_path / "tofu.pdf"
    html = "<h1 style='font-family: sans-serif'>" + " ".join(CHINESE_PROBES) + "</h1>"
    script = (f"from weasyprint import HTML; open({str(out)!r}, 'wb')"
              f".write(HTML(string={html!r}).write_pdf())")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                   env={**os.environ, "FONTCONFIG_FILE": str(conf)})
    assert missing_chinese(out) == CHINESE_PROBES


def test_first_page_renders_to_png(made, tmp_path):
    _, _, pdf, _ = made
    subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "40", "-png", str(pdf),
                    str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

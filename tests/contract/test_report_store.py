"""The `reports` kind on both backends: a stored report keeps its PDF bytes exactly, is found
by type and through the tenant scope, records delivery attempts; a schedule+period claim is
won by exactly one of several racing writers."""
from __future__ import annotations

import hashlib
import threading

from watchkeeper.store.reports import (StoredReport, claim_run, html_text, list_reports,
                                       pdf_bytes, record_delivery, save_report, summary)
from watchkeeper.store.scoped import ScopedStore

T0 = 1_764_518_400.0      # 2025-11-30T16:00:00Z
PDF = bytes(range(256)) * 64 + b"%%EOF"      # every byte value: base64 must round-trip


def _report(report_id: str, site: str | None, report_type: str = "monthly") -> StoredReport:
    return StoredReport(report_id=report_id, report_type=report_type, period="2025-12",
                        period_start=T0, period_end=T0 + 31 * 86400, site=site, pdf=PDF,
                        html="<h1>月报</h1>", schedule="monthly-all")


def test_reports_round_trip_and_respect_the_scope(store):
    save_report(store, _report("rep-a", "city-a"), now=T0 + 100)
    save_report(store, _report("rep-b", "city-b", "weekly"), now=T0 + 200)
    save_report(store, _report("rep-root", None), now=T0 + 300)
    [stored] = store.get_by_ids("reports", ["rep-a"])
    assert pdf_bytes(store, stored) == PDF
    assert html_text(store, stored) == "<h1>月报</h1>"
    assert "pdf" not in str(list_reports(store).items)     # lists carry no bytes
    assert summary(stored)["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert [summary(d)["id"] for d in list_reports(store).items] == ["rep-root", "rep-b", "rep-a"]
    assert [summary(d)["id"] for d in list_reports(store, "weekly").items] == ["rep-b"]
    scoped = ScopedStore(store, ["city-a"])
    assert [summary(d)["id"] for d in list_reports(scoped).items] == ["rep-a"]
    assert scoped.get_by_ids("reports", ["rep-b", "rep-root"]) == []


def test_delivery_attempts_are_appended(store):
    save_report(store, _report("rep-d", None), now=T0)
    record_delivery(store, "rep-d", {"channel": "email", "target": "a@b", "ok": False,
                                     "error": "refused", "attempt": 1, "at": T0})
    record_delivery(store, "rep-d", {"channel": "email", "target": "a@b", "ok": True,
                                     "error": "", "attempt": 2, "at": T0 + 60})
    [doc] = store.get_by_ids("reports", ["rep-d"])
    assert [d["ok"] for d in doc["watchkeeper"]["report"]["deliveries"]] == [False, True]
    assert pdf_bytes(store, doc) == PDF
    assert record_delivery(store, "missing", {}) is None


def test_one_claim_per_schedule_and_period_among_racing_writers(store):
    wins: list[bool] = []
    start = threading.Barrier(4)

    def claim(owner: str) -> None:
        start.wait()
        wins.append(claim_run(store, "monthly-all", "2025-12", owner, T0))

    threads = [threading.Thread(target=claim, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
    assert claim_run(store, "monthly-all", "2026-01", "p0", T0) is True


def test_monthly_report_figures_are_the_store_aggregates_on_both_backends(store):
    """The section builders' queries (terms, date_histogram, totals, scans) on each backend:
    the same seeded data gives the same figures, equal to the store's own aggregates."""
    from reports.builder import ReportRequest, build_report
    from reports.periods import parse_period
    from reports.settings import ReportSettings
    from tests.unit.reports import seed
    from watchkeeper.store.base import Query
    inventory = seed.seed(store)
    period = parse_period("monthly", "2026-11")
    report = build_report(store, ReportRequest("monthly", "city-a", period), ReportSettings(),
                          inventory, now=seed.utc(2026, 12, 1, 2))
    data = report.figures()
    sites = ["city-a", "county-a1"]
    span = Query(since=period.start, until=period.end, sites=sites)
    assert data["intrusion"]["total"] == store.search("alerts", span).total
    assert {c["category"]: c["count"] for c in data["intrusion"]["categories"]
            if c["count"]} == {b.key: b.count for b in store.terms(
                "alerts", "watchkeeper.alert.category", span, 50)}
    assert sum(d["count"] for d in data["intrusion"]["per_day"]) == data["intrusion"]["total"]
    assert sorted(s["key"] for s in data["intrusion"]["top_sites"]) == sites
    assert data["incidents"]["total"] == 3     # inc-on-time, inc-minor (city-a), inc-late
    assert data["incidents"]["clock"] == {"on_time": 1, "late": 1, "open_overdue": 0, "open": 0}
    assert data["audit"]["records"] == 3 and data["audit"]["chain_ok"]
    assert [c["name"] for c in data["coverage"]["collectors"]] == ["sensor-a"]
    assert data["coverage"]["collectors"][0]["availability"] == 16.7     # every 6th hour
    assert [s["dataset"] for s in data["retention"]["sources"] if s["held"]] == \
        ["watchkeeper.flow"]
    assert data["assets"]["targets"] and all(isinstance(t["ip"], str)
                                             for t in data["assets"]["targets"])

"""The `reports` kind on both backends: a stored report keeps its PDF bytes exactly, is found
by type and through the tenant scope, records delivery attempts; a schedule+period claim is
won by exactly one of several racing writers."""
from __future__ import annotations

import hashlib
import threading

from watchkeeper.store.reports import (StoredReport, claim_run, list_reports, pdf_bytes,
                                       record_delivery, save_report, summary)
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
    assert pdf_bytes(stored) == PDF
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
    assert pdf_bytes(doc) == PDF
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

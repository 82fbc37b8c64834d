"""Retention keeps six calendar months of events (Cybersecurity Law Art. 23, formerly 21)."""
from __future__ import annotations

from app import pipeline
from watchkeeper import timeutil
from watchkeeper.config import load_settings
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Query
from watchkeeper.store.sqlite import SqliteStore

NOW = timeutil.parse("2026-08-31T10:00:00Z")


def _event(day: str) -> dict:
    t = timeutil.parse(f"{day}T12:00:00Z")
    return flow_document(FlowRecord(uid=day, start=t, end=t + 1, proto=17, orig_ip="10.0.0.1",
                                    orig_port=5000, resp_ip="10.0.0.53", resp_port=53),
                         "s", InternalNetworks())


def test_six_calendar_months_are_kept_and_older_days_dropped(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    days = ["2026-02-26", "2026-02-27", "2026-02-28", "2026-03-01", "2026-08-30"]
    store.bulk_upsert("events", [_event(d) for d in days])
    dropped = pipeline.apply_retention(load_settings(), store, now=NOW)
    # Six calendar months before 31 Aug is 28 Feb (clamped): 28 Feb itself is kept.
    assert dropped == ["2026.02.26", "2026.02.27"]
    kept = {d["@timestamp"][:10] for d in store.search("events", Query()).items}
    assert kept == {"2026-02-28", "2026-03-01", "2026-08-30"}


def test_retention_is_configurable(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    store.bulk_upsert("events", [_event("2025-08-30"), _event("2026-01-15")])
    dropped = pipeline.apply_retention(load_settings(retention_months=12), store, now=NOW)
    assert dropped == ["2025.08.30"]

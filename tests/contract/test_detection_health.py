"""Detection health on both store backends, with a frozen `now`: silent collectors (stopped,
idle, never sending, active), captures dropping packets, the wk.collector.silent alert raised
once per silence through the real alerting and indexing stages and closed when the collector
is back, evidence quality stamped by the policy layer, /health and the posture's warnings."""
from __future__ import annotations

import warnings

import pytest

from alerting.collector_watch import RULE_ID, CollectorWatch
from alerting.context import AlertContext
from alerting.evidence import GapCache
from alerting.worker import AlertingWorker
from api import create_app
from api.deps import get_clock
from watchkeeper import codec, timeutil
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.collector_silence import capture_gaps, silences
from watchkeeper.config import AuthSettings
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.indexer import Indexer
from watchkeeper.status import status_document
from watchkeeper.store.base import Query

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NOW = 1_767_225_600.0 + 10 * 86400 + 1800      # 2026-01-11T00:30:00Z
SILENT_AFTER = 300.0
SECRET = "contract-tests-only-" + "h3alth-" * 5


def _status(collector: str, observer: str, counters: dict, start: float, at: float,
            site: str | None = None, final: bool = False) -> dict:
    return status_document(collector, counters, observer, start, at, 10, site, final)


SEED = [
    # capturing, and its kernel drops grew between the two newest reports: dropping now
    _status("capture:eth1", "sensor-1", {"packets": 1000, "kernel_drops": 4}, NOW - 600,
            NOW - 40, "county-a1"),
    _status("capture:eth1", "sensor-1", {"packets": 1500, "kernel_drops": 6}, NOW - 600,
            NOW - 30, "county-a1"),
    # sent 50 lines, then no report for an hour: stopped
    _status("syslog", "sensor-2", {"parsed": 50}, NOW - 7200, NOW - 3600, "city-b"),
    # reports on time, but its output has not moved for more than SILENT_AFTER: idle
    _status("netflow", "sensor-3", {"records_published": 80}, NOW - 1000, NOW - 900),
    _status("netflow", "sensor-3", {"records_published": 80}, NOW - 1000, NOW - 400),
    _status("netflow", "sensor-3", {"records_published": 80}, NOW - 1000, NOW - 10),
    # never sent anything: not "was sending", so never silent
    _status("tailers", "sensor-4", {"records_published": 0}, NOW - 1000, NOW - 400),
    _status("tailers", "sensor-4", {"records_published": 0}, NOW - 1000, NOW - 5),
    # sent, then stopped cleanly (its last report says so): stopped on purpose, not silent
    _status("capture:eth2", "sensor-6", {"packets": 9}, NOW - 2000, NOW - 1000, final=True),
    # sending: its output moved within SILENT_AFTER
    _status("syslog", "sensor-5", {"parsed": 10}, NOW - 1000, NOW - 400),
    _status("syslog", "sensor-5", {"parsed": 20}, NOW - 1000, NOW - 10),
]


@pytest.fixture
def seeded(store):
    store.bulk_upsert("events", SEED)
    store.refresh()
    return store


def test_silences_are_stopped_or_idle_collectors_that_were_sending(seeded):
    found = {(s.collector, s.observer): s for s in silences(seeded, NOW, SILENT_AFTER)}
    assert set(found) == {("syslog", "sensor-2"), ("netflow", "sensor-3")}
    stopped, idle = found[("syslog", "sensor-2")], found[("netflow", "sensor-3")]
    assert (stopped.kind, stopped.output, stopped.site) == ("stopped", 50, "city-b")
    assert stopped.since == timeutil.format(NOW - 3600)
    assert (idle.kind, idle.output, idle.since) == ("idle", 80, timeutil.format(NOW - 400))
    later = {s.collector: s.id for s in silences(seeded, NOW + 120, SILENT_AFTER)}
    assert later == {"syslog": stopped.id, "netflow": idle.id}   # one silence, one id
    assert silences(seeded, NOW, 7200) == []                    # a longer threshold: none
    # and a capture whose kernel drops grow between its two newest reports is a gap
    gaps = capture_gaps(seeded, NOW)
    assert [(g.collector, g.observer, g.recent_drops) for g in gaps] == [
        ("capture:eth1", "sensor-1", 2)]


def _through_the_stages(bus, store, names):
    """The real path of a raised alert: alerting policy, then the indexer."""
    AlertingWorker(bus, AlertContext(), names).step(timeout=0.1)
    indexer = Indexer(bus, store, names)
    try:
        indexer.step(timeout=0.1)
    finally:
        indexer.close()      # a write may still be in flight after a step: close waits for it
    store.refresh()


def test_one_alert_per_silence_closed_when_the_collector_is_back(seeded):
    bus, names = EmbeddedBus(), Names("wkt")
    bus.ensure_topics(names.topics)
    bus.declare_readers(names.group("alerting"), [names.alerts_raw])
    bus.declare_readers(names.group("index"), names.topics)
    clock = [NOW]
    watch = CollectorWatch(bus, seeded, SILENT_AFTER, names, clock=lambda: clock[0])
    assert watch.check() == (2, 0)
    _through_the_stages(bus, seeded, names)
    query = Query(terms={"rule.id": [RULE_ID]})
    alerts = {a["watchkeeper"]["collector"]["name"]: a for a in seeded.search("alerts", query).items}
    assert set(alerts) == {"syslog", "netflow"}
    syslog = alerts["syslog"]
    assert syslog["observer"]["name"] == "sensor-2" and syslog["labels"]["site"] == "city-b"
    assert syslog["watchkeeper"]["alert"]["category"] == "anomaly"
    assert "已静默" in syslog["watchkeeper"]["alert"]["message_zh"]
    assert "silent for about" in syslog["message"]                 # ECS message: English
    # a second check, or a second watcher (a replica, a restart): the same alerts, no new ones
    clock[0] = NOW + 60
    assert watch.check() == (0, 0)
    CollectorWatch(bus, seeded, SILENT_AFTER, names, clock=lambda: clock[0]).check()
    _through_the_stages(bus, seeded, names)
    assert seeded.search("alerts", query).total == 2
    # the netflow exporter sends again: its alert is closed, the stopped syslog's stays open
    seeded.bulk_upsert("events", [_status("netflow", "sensor-3", {"records_published": 95},
                                          NOW - 1000, NOW + 70)])
    seeded.refresh()
    clock[0] = NOW + 75
    assert watch.check() == (0, 1)
    status = {a["watchkeeper"]["collector"]["name"]: a["watchkeeper"]["alert"]
              for a in seeded.search("alerts", query).items}
    assert (status["netflow"]["status"], status["netflow"]["verdict"]) == ("closed", "other")
    assert status["syslog"]["status"] == "new"


def _alert(site: str | None, detector: str = "scan") -> dict:
    spec = AlertSpec(detector=detector, detector_version="1", category="scan", rule_id="r",
                     rule_name="r", severity=3, message="m", entity="203.0.113.7",
                     first_seen=NOW - 5, last_seen=NOW - 5, source_ip="203.0.113.7")
    doc = alert_document(spec, NOW)
    if site:
        doc["labels"] = {"site": site}
    return doc


def test_alerts_raised_meanwhile_say_their_evidence_is_partial(seeded, tmp_path):
    policy = AlertContext(clock=lambda: NOW, evidence_gaps=GapCache(seeded, SILENT_AFTER))
    here = policy.apply(_alert("county-a1"))["watchkeeper"]["alert"]
    assert here["evidence_quality"] == "partial"
    # its own site's capture dropping, the site-less netflow silence; not city-b's syslog
    assert sorted((g["kind"], g["collector"]) for g in here["evidence_gaps"]) == [
        ("collector_silent", "netflow"), ("kernel_drops", "capture:eth1")]
    there = policy.apply(_alert("city-b"))["watchkeeper"]["alert"]
    assert sorted(g["collector"] for g in there["evidence_gaps"]) == ["netflow", "syslog"]
    suricata = policy.apply(_alert("county-a1", detector="suricata"))["watchkeeper"]["alert"]
    assert "evidence_quality" not in suricata
    calm = AlertContext(clock=lambda: NOW, evidence_gaps=lambda now: [])
    assert calm.apply(_alert("county-a1"))["watchkeeper"]["alert"]["evidence_quality"] == \
        "complete"
    seeded.bulk_upsert("alerts", [codec.decode(codec.encode(policy.apply(_alert("city-b"))))])
    seeded.refresh()
    stored = seeded.search("alerts", Query(limit=5)).items[0]["watchkeeper"]["alert"]
    assert stored["evidence_quality"] == "partial"      # the store keeps (and maps) it


@pytest.fixture
def api(seeded):
    app = create_app(seeded, auth_settings=AuthSettings(secret_key=SECRET),
                     sites={"region": None, "city-b": "region", "county-a1": "region"})
    app.dependency_overrides[get_clock] = lambda: NOW
    with TestClient(app) as client:
        yield client


def test_health_is_degraded_and_the_posture_warns_while_a_capture_drops(api):
    response = api.get("/health")
    assert response.status_code == 200, response.text        # a restart would not help
    body = response.json()
    assert body["status"] == "degraded" and "capture:eth1@sensor-1" in body["reason"]
    assert body["capture"] == [{"observer": "sensor-1", "collector": "capture:eth1",
                                "recent_drops": 2}]
    # the posture warns of the same drops, and of the silent collector
    api.app.state.access.accounts.ids.put_user({
        "name": "viewer-root", "role": "viewer", "site": "/", "disabled": False,
        "password_hash": "x", "failures": 0, "locked_until": 0.0}, NOW)
    token = issue_access_token(Principal("viewer-root", "viewer", "/"), SECRET, 600)
    body = api.get("/api/v1/posture", headers={"Authorization": f"Bearer {token}"}).json()
    kinds = {(w["kind"], w["collector"]) for w in body["warnings"]}
    assert kinds == {("kernel_drops", "capture:eth1"), ("collector_silent", "syslog")}
    assert all(w["message"] for w in body["warnings"])
    capture = next(c for c in body["collectors"] if c["collector"] == "capture:eth1")
    assert capture["dropping"] is True and capture["recent_drops"] == 2
    api.app.dependency_overrides[get_clock] = lambda: NOW + 3600   # the capture went quiet
    assert api.get("/health").json()["status"] == "ok"

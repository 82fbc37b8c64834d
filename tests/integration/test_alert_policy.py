"""Suricata alerts pass the alerting policy like the detectors' (issue 16): tailer -> wk.alerts.raw
-> alerting -> wk.alerts -> indexer and correlator, on the embedded bus and on Kafka."""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from app import collect, pipeline
from app.settings import load_settings
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Query
from watchkeeper.store.suppressions import create_rule

from collectors.tailers.common import Context
from collectors.tailers.suricata import alert_doc

INVENTORY = Path(__file__).resolve().parents[2] / "deploy/examples/inventory.yaml"
WHEN = "2024-03-11T10:15:02.123456+0000"


def eve_alert(src: str, dst: str, sid: int, second: int = 0) -> dict:
    return {"timestamp": WHEN.replace(":02.", f":{2 + second:02d}."), "flow_id": 1000 + sid,
            "event_type": "alert", "src_ip": src, "src_port": 51734, "dest_ip": dst,
            "dest_port": 80, "proto": "TCP",
            "alert": {"action": "allowed", "gid": 1, "signature_id": sid, "rev": 1,
                      "signature": f"ET TEST signature {sid}", "category": "Misc Attack",
                      "severity": 2}}


@pytest.fixture(params=["memory", "kafka"])
def bus_url(request) -> str:
    if request.param == "memory":
        return "memory://"
    return request.getfixturevalue("kafka_url")   # the project's broker (tests/conftest.py)


def _wait_for(store, kind: str, count: int, timeout_s: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        store.refresh()
        items = store.search(kind, Query(limit=100)).items
        if len(items) >= count or time.monotonic() > deadline:
            return items
        time.sleep(0.2)


def test_suricata_alert_gets_risk_allowlist_suppression_and_incident(bus_url, tmp_path):
    attack = eve_alert("10.10.1.30", "10.10.2.20", 9000001)          # -> dc-region portal
    pentest = eve_alert("10.10.1.99", "10.10.2.20", 9000002, 1)      # allowlisted actor
    noisy = eve_alert("10.10.1.50", "10.10.2.20", 9000003, 2)        # a suppression rule's
    eve = tmp_path / "eve.json"
    eve.write_text("".join(json.dumps(r) + "\n" for r in (attack, pentest, noisy)))
    settings = load_settings(
        bus=bus_url, store=f"sqlite:///{tmp_path}/wk.db", namespace=f"ap{uuid.uuid4().hex[:10]}",
        inventory_file=str(INVENTORY), data_dir=str(tmp_path / "var"),
        allowlist=[{"cidr": "10.10.1.99/32", "reason": "authorised penetration test"}])
    stop = threading.Event()
    with pipeline.open_backends(settings) as backends:
        rule = create_rule(backends.store, {"detector": "suricata", "source_cidr": "10.10.1.50/32",
                                            "reason": "known noisy sensor"}, "sec", time.time())
        threads = pipeline.start_workers(settings, backends, stop,
                                         roles=("alerting", "index", "correlate"))
        threads.append(threading.Thread(target=collect.run_tailers,
                                        args=(settings, backends.bus, [str(eve)], stop)))
        threads[-1].start()
        try:
            alerts = {a["source"]["ip"]: a for a in _wait_for(backends.store, "alerts", 3)}
            incidents = _wait_for(backends.store, "incidents", 1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    assert set(alerts) == {"10.10.1.30", "10.10.1.50", "10.10.1.99"}

    plain = alert_doc(attack, Context("test", InternalNetworks()))
    hit = alerts["10.10.1.30"]
    assert hit["labels"]["site"] == "dc-region"                       # asset context
    assert hit["watchkeeper"]["asset"]["destination"]["owner"] == "li.wei"
    assert hit["event"]["risk_score"] > plain["event"]["risk_score"]  # criticality 5, MLPS 3
    info = hit["watchkeeper"]["alert"]
    assert info["status"] == "new" and info["incident_id"]
    assert [i["event"]["id"] for i in incidents] == [info["incident_id"]]
    assert incidents[0]["watchkeeper"]["incident"]["alerts"] == [hit["event"]["id"]]

    allowed = alerts["10.10.1.99"]["watchkeeper"]["alert"]
    assert (allowed["status"], allowed["verdict"], allowed["suppressed_by"]) == (
        "closed", "benign_positive", "allowlist")
    assert "incident_id" not in allowed
    silenced = alerts["10.10.1.50"]["watchkeeper"]["alert"]
    assert (silenced["status"], silenced["suppressed_by"]) == ("closed", rule.rule.id)

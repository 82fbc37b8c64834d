"""OS fingerprinting (the scan detector's `wk.scan.os_fingerprint` rule, detectors/fingerprint.py):
nmap -O on a public capture, the kinds of invalid-flag probe, and what stays quiet."""
from __future__ import annotations

import json

import pytest

from collectors.capture import iter_flow_documents
from detectors.base import replay
from detectors.fingerprint import probe_kind
from detectors.scan import ScanDetector
from tests.datafiles import data_file
from watchkeeper import timeutil
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

NETS = InternalNetworks()
T0 = 1_780_000_000.0
# history of each kind's flow: the probe, refused (RST) where a Linux stack refuses it
KINDS = {"null": ("", 1), "synfin": ("Q", 1), "fin": ("Fr", 1), "ack": ("Ar", 1)}


def probe(i, t, kind, dst="10.0.1.9", port=80, src="10.0.0.5"):
    history, packets = KINDS[kind]
    record = FlowRecord(uid=f"C{src}-{i}", start=t, end=t + 0.001, proto=6, orig_ip=src,
                        orig_port=40000 + i, resp_ip=dst, resp_port=port, orig_pkts=packets,
                        resp_pkts=1 if "r" in history else 0, orig_ip_bytes=40,
                        conn_state="OTH", history=history)
    return flow_document(record, "s", NETS)


def fingerprint(dst="10.0.1.9", start=T0, src="10.0.0.5", kinds=("null", "synfin", "fin")):
    return [probe(i, start + i * 0.05, k, dst, 80 + i, src) for i, k in enumerate(kinds)]


def _fingerprints(alerts):
    return [a for a in alerts if a.rule_id == "wk.scan.os_fingerprint"]


def _time(doc):
    return timeutil.parse(doc["@timestamp"])


def test_nmap_os_detection_on_a_public_capture_is_named():
    """cs_activeosfingerprinting: 172.16.16.128 runs nmap -O against 172.16.16.150 (six SYNs
    to port 135, T2 with no flags, T3 SYN+FIN+URG+PSH, T4-T7): 15 connections, too few
    failures for any fan-out rule, which missed it."""
    docs = sorted(iter_flow_documents([str(data_file("scan/cs_activeosfingerprinting.pcapng"))],
                                      "s", NETS, app=True), key=_time)
    alerts = replay(ScanDetector(), docs)
    assert {(a.rule_id, a.entity) for a in alerts} == {
        ("wk.scan.os_fingerprint", "172.16.16.128")}
    alert = alerts[0]
    assert alert.destination_ip == "172.16.16.150" and alert.count == 1
    assert alert.severity == 2 and alert.technique_id == "T1046"
    probes = {d["event"]["id"]: d["watchkeeper"]["flow"]["history"] for d in docs}
    assert sorted(probes[e] for e in alert.evidence) == ["", "F", "Q"]   # T2, T7, T3
    assert "nmap -O" in alert.message and "操作系统指纹探测" in alert.message_zh


@pytest.mark.parametrize("history, packets, kind", [
    ("", 1, "null"), ("", 0, None), ("Q", 1, "synfin"), ("QT", 2, "synfin"),
    ("F", 1, "fin"), ("Fr", 1, "fin"), ("Ar", 1, "ack"), ("A", 1, None),
    ("S", 1, None), ("ShAFf", 5, None), ("^Fr", 1, None),
])
def test_probe_kinds(history, packets, kind):
    assert probe_kind({"history": history, "orig_bytes": 0}, packets) == kind


@pytest.mark.parametrize("events, raised", [
    (fingerprint(), True),
    (fingerprint(kinds=("ack", "fin", "null", "synfin")), True),
    # the same three kinds spread over half a minute: not one look at a stack
    ([probe(i, T0 + i * 15.0, k, port=80 + i) for i, k in enumerate(("null", "synfin", "fin"))],
     False),
    # one kind to many ports is a stealth port scan (TRW's), not fingerprinting
    ([probe(i, T0 + i * 0.01, "fin", port=1 + i) for i in range(100)], False),
    # a client closing connections its server forgot: FINs and ACKs refused, two kinds
    ([probe(i, T0 + i * 0.5, ("fin", "ack")[i % 2], port=443) for i in range(20)], False),
    # the three kinds, but to three different hosts
    ([probe(i, T0 + i * 0.05, k, f"10.0.1.{9 + i}") for i, k in
      enumerate(("null", "synfin", "fin"))], False),
])
def test_shapes(events, raised):
    assert bool(_fingerprints(replay(ScanDetector(), events))) == raised


def test_fingerprinting_a_subnet_is_one_alert_whose_count_grows():
    events = [e for h in range(20) for e in fingerprint(f"10.0.1.{10 + h}", T0 + h * 2.0)]
    events.append(probe(999, T0 + 200, "fin", "10.0.3.3", src="10.0.3.4"))   # time moves on
    alerts = _fingerprints(replay(ScanDetector(), events))
    assert {a.entity for a in alerts} == {"10.0.0.5"}
    assert [a.count for a in alerts] == [1, 2, 4, 8, 16, 20]      # the last: the final count
    assert alerts[0].destination_ip == "10.0.1.10" and alerts[-1].destination_ip is None
    assert len(alerts[-1].evidence) == 60 and "20 hosts" in alerts[-1].message


def test_an_outside_prober_is_low_severity_active_scanning():
    alerts = _fingerprints(replay(ScanDetector(), fingerprint(src="203.0.113.7")))
    assert alerts and alerts[0].severity == 1 and alerts[0].technique_id == "T1595"


def test_a_restored_detector_remembers_the_kinds_already_seen():
    events = fingerprint()
    first = ScanDetector()
    assert replay(first, events[:2]) == []
    second = ScanDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert _fingerprints(replay(second, events[2:]))

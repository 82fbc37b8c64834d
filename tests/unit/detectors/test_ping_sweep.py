"""Ping sweeps (the scan detector's `wk.scan.ping_sweep` rule, detectors/sweep.py): the Slips
ICMP sweep capture, a sweep whose hosts all answer (which TRW cannot name), and the shapes a
client or a monitoring system gives."""
from __future__ import annotations

import json

import pydantic
import pytest

from collectors.capture import iter_flow_documents
from detectors.base import replay
from detectors.scan import ScanConfig, ScanDetector
from tests.datafiles import data_file
from watchkeeper import schema, timeutil
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

NETS = InternalNetworks()
T0 = 1_780_000_000.0


def echo(i, t, dst, src="10.0.8.66", answered=True, proto=1):
    """One ICMP echo request flow (type 8 in source.port, as Zeek and our meter write it)."""
    record = FlowRecord(uid=f"C{src}-{i}", start=t, end=t + 0.003, proto=proto, orig_ip=src,
                        orig_port=8 if proto == 1 else 128, resp_ip=dst, resp_port=0,
                        orig_pkts=1, resp_pkts=1 if answered else 0, orig_ip_bytes=28,
                        resp_ip_bytes=28 if answered else 0, conn_state="OTH")
    return flow_document(record, "s", NETS)


def sweep(n=254, gap=0.01, start=T0, src="10.0.8.66", answered=True):
    return [echo(i, start + i * gap, f"10.0.{9 + (i + 1) // 255}.{1 + i % 254}", src, answered)
            for i in range(n)]


def tick(t, src="10.0.3.3"):
    """Another host's ordinary request later on: the clock moves, timers fire."""
    return echo(999_999, t, "10.0.3.4", src)


def _rules(alerts):
    return {(a.rule_id, a.entity) for a in alerts}


def _time(doc):
    return timeutil.parse(doc["@timestamp"])


def test_the_slips_icmp_sweep_is_named_with_its_final_count():
    """192.168.1.109 pings 18 addresses of 192.168.1.0/24 in 1.6 s (MANIFEST.md), one of them
    the subnet's broadcast .255, which names no host; 11 of the 17 others answer, too many
    for TRW (a scanner's first contacts mostly fail), which stays quiet."""
    docs = [d for d in iter_flow_documents(
        [str(data_file("scan/slips_test12-icmp-portscan.pcap"))], "s", NETS, app=True)
        if d["event"]["dataset"] == schema.FLOW]
    docs.sort(key=_time)
    alerts = replay(ScanDetector(), docs + [tick(_time(docs[-1]) + 90, "192.168.1.2")])
    assert _rules(alerts) == {("wk.scan.ping_sweep", "192.168.1.109")}
    assert [a.count for a in alerts] == [15, 17]                # the last: the final count
    last = alerts[-1]
    assert last.category == "scan" and last.severity == 2 and last.technique_id == "T1018"
    assert last.first_seen == alerts[0].first_seen and last.last_seen <= _time(docs[-1])
    assert "11 answered" in last.message and "其中 11 个应答" in last.message_zh
    assert "(192.168.1.0 – 192.168.1.192, " in last.message        # the span pinged
    assert len(last.evidence) == 17 and "192.168.1.255" not in last.related_ips


def test_a_sweep_whose_hosts_all_answer_is_named_where_trw_is_silent():
    events = sweep() + [tick(T0 + 200)]
    alerts = replay(ScanDetector(), events)
    assert _rules(alerts) == {("wk.scan.ping_sweep", "10.0.8.66")}
    assert [a.count for a in alerts] == [15, 30, 60, 120, 240, 254]
    # without the rule nothing names it: every first contact succeeded
    quiet = ScanDetector(ScanConfig(ping_min_hosts=1_000_000))
    assert replay(quiet, events) == []


def test_an_unanswered_sweep_is_named_by_both_rules():
    alerts = replay(ScanDetector(), sweep(n=100, answered=False))
    assert {rule for rule, _ in _rules(alerts)} == {"wk.scan", "wk.scan.ping_sweep"}


def test_icmpv6_echo_requests_count_too():
    events = [echo(i, T0 + i * 0.1, f"fd00::{i + 1:x}", "fd00::66", proto=58)
              for i in range(20)]
    assert _rules(replay(ScanDetector(), events)) == {("wk.scan.ping_sweep", "fd00::66")}


@pytest.mark.parametrize("events, raised", [
    (sweep(n=15, gap=3.9), True),                      # 15 hosts within a minute
    (sweep(n=14), False),                              # under the floor
    (sweep(n=200, gap=10.0), False),                   # one address every 10 s: 6 a minute
    # a continuous ping to one host, and a client pinging its three servers now and then
    ([echo(i, T0 + i, "10.0.9.1") for i in range(600)], False),
    ([echo(i, T0 + i * 7.0, f"10.0.9.{1 + i % 3}") for i in range(300)], False),
    # pings to the subnet's broadcast and to multicast name no host
    ([echo(i, T0 + i * 0.1, f"10.0.{i}.255") for i in range(40)], False),
    ([echo(i, T0 + i * 0.1, f"239.1.1.{i + 1}") for i in range(40)], False),
])
def test_shapes(events, raised):
    alerts = [a for a in replay(ScanDetector(), events) if a.rule_id == "wk.scan.ping_sweep"]
    assert bool(alerts) == raised


def test_a_monitoring_system_is_named_until_it_is_left_out():
    """Pinging 40 hosts every minute is a sweep by its shape: the rule says so (the message
    names the look-alike) and `ping_ignored_senders` leaves such a system out."""
    poller = [echo(r * 40 + i, T0 + r * 60 + i * 0.05, f"10.0.9.{1 + i}", "10.0.1.5")
              for r in range(10) for i in range(40)]
    named = replay(ScanDetector(), poller)
    assert _rules(named) == {("wk.scan.ping_sweep", "10.0.1.5")}
    assert "monitoring system" in named[0].message and "监控系统" in named[0].message_zh
    det = ScanDetector(ScanConfig(ping_ignored_senders=["10.0.1.0/28"]))
    assert replay(det, poller) == []
    with pytest.raises(pydantic.ValidationError, match="ping_ignored_senders"):
        ScanConfig(ping_ignored_senders=["10.0.1.0/33"])


def test_an_outside_sweeper_is_low_severity_active_scanning():
    outside = sweep(n=50, src="203.0.113.9")
    alerts = replay(ScanDetector(), outside)
    assert outside[0]["network"]["direction"] == "inbound"
    assert alerts and all(a.severity == 1 and a.technique_id == "T1595" for a in alerts)


def test_a_restored_detector_goes_on_counting_the_same_sweep():
    events = sweep(n=60) + [tick(T0 + 200)]
    whole = replay(ScanDetector(), events)
    first = ScanDetector()
    before = replay(first, events[:20])
    second = ScanDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    after = replay(second, events[20:])
    assert [(a.count, a.first_seen) for a in before + after] == \
        [(a.count, a.first_seen) for a in whole]

"""Host discovery over ARP (the scan detector's `wk.scan.arp_sweep` rule, detectors/sweep.py):
sweeps on two public captures and in shapes, quiet on hosts resolving their own neighbours."""
from __future__ import annotations

import json
from dataclasses import asdict

import pydantic
import pytest

from collectors.capture import iter_flow_documents
from detectors.base import replay
from detectors.scan import ScanConfig, ScanDetector
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current
from watchkeeper import schema, timeutil
from watchkeeper.documents import alert_document
from watchkeeper.networks import InternalNetworks

T0 = 1_700_000_000.0


def ask(i, t, target, sender="10.0.8.66"):
    return {"@timestamp": timeutil.format(t),
            "event": {"id": f"a{i}", "kind": "event", "dataset": schema.ARP},
            "source": {"ip": sender, "mac": "02-00-00-00-00-0A"},
            "destination": {"ip": target}, "network": {"protocol": "arp"}}


def _time(event):
    return timeutil.parse(event["@timestamp"])


def sweep(n=254, gap=0.01, start=T0, sender="10.0.8.66", base=(10, 0, 8)):
    return [ask(i, start + i * gap, f"{base[0]}.{base[1]}.{base[2] + (i + 1) // 256}."
                                    f"{(i + 1) % 256}", sender) for i in range(n)]


@pytest.mark.parametrize("capture, sender, asked", [
    ("public/scan/zeek_nmap-vsn.pcap", "192.168.1.71", 245),   # nmap host discovery
    # Slips' ARP-scan test capture: 255 addresses asked, 2 of them by unicast (not counted)
    ("scan/slips_test8-arp-scan.pcap", "192.168.1.247", 253),
])
def test_the_sweeps_of_two_public_captures_are_named(capture, sender, asked):
    docs = [d for d in iter_flow_documents([str(data_file(capture))], "s", InternalNetworks(),
                                           app=True)
            if d["event"]["dataset"] == schema.ARP]
    docs.sort(key=lambda d: d["@timestamp"])
    # The captures end with the sweep; on a live segment the clock moves on, here one other
    # host's request a minute and a half later moves it.
    tick = ask(99_999, _time(docs[-1]) + 90, "192.168.1.1", sender="192.168.1.2")
    alerts = replay(ScanDetector(), docs + [tick])
    assert {(a.rule_id, a.entity, a.category) for a in alerts} == {
        ("wk.scan.arp_sweep", sender, "scan")}
    last = alerts[-1]
    assert [a.count for a in alerts] == [64, 128, asked]       # the last: the final count
    assert last.technique_id == "T1018" and last.severity == 3
    assert last.first_seen == alerts[0].first_seen and last.last_seen == _time(docs[-1])
    assert "ARP" in last.message and "ARP" in last.message_zh and len(last.evidence) == 100


@pytest.mark.parametrize("events, raised", [
    (sweep(), True),                                        # a /24 in 2.5 s
    (sweep(n=70, gap=0.5), True),                           # 70 addresses in 35 s
    (sweep(n=60), False),                                   # under 64: a small subnet's worth
    (sweep(n=200, gap=10.0), False),                        # one address every 10 s
    # a busy server resolving 40 neighbours over and over (each asked once a minute)
    ([ask(i, T0 + i * 1.5, f"10.0.8.{10 + i % 40}") for i in range(2400)], False),
])
def test_shapes(events, raised):
    assert bool(replay(ScanDetector(), events)) == raised


def test_a_gateway_can_be_left_out():
    det = ScanDetector(ScanConfig(arp_ignored_senders=["10.0.8.1/32", "10.9.0.0/16"]))
    assert replay(det, sweep(sender="10.0.8.1")) == []
    assert replay(det, sweep(sender="10.9.4.4")) == []
    assert replay(det, sweep(sender="10.0.8.66"))


def test_a_slow_wide_sweep_keeps_one_current_alert():
    # A /20, two addresses a second for 30 minutes: one alert id, refreshed to the end.
    events = sweep(n=3600, gap=0.5)
    alerts = replay(ScanDetector(), events)
    assert len({alert_document(a, created=0.0)["event"]["id"] for a in alerts}) == 1
    assert alerts[-1].first_seen == T0 and alerts[-1].count == 121     # 60 s, both ends
    assert_kept_current(alerts, _time(events[-1]), most=61.0)


def test_a_fast_sweep_that_stops_is_stored_with_its_final_count():
    # 245 addresses in 2.5 s: raised at 64 and 128, then the count grows with no raise due.
    events = sweep(n=245)
    clock = [ask(1000 + k, T0 + 5 + k * 10, "10.0.9.1", sender="10.0.9.9") for k in range(12)]
    stream = sorted(events + clock, key=_time)
    quiet_50s = [e for e in stream if _time(e) <= _time(events[-1]) + 50]
    assert [a.count for a in replay(ScanDetector(), quiet_50s)] == [64, 128]
    alerts = replay(ScanDetector(), stream)              # quiet for a refresh period (60 s)
    assert [a.count for a in alerts] == [64, 128, 245]    # raised once more, not again
    assert alerts[-1].first_seen == alerts[0].first_seen == T0
    assert alerts[-1].last_seen == _time(events[-1]) and alerts[-1].severity == 3
    # Waiting for it survives a restart: it is in the checkpoint.
    first = ScanDetector()
    replay(first, events)
    second = ScanDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert [a.count for a in second.on_timer(_time(events[-1]) + 61)] == [245]
    assert second.on_timer(_time(events[-1]) + 120) == []


def test_state_survives_a_restore_expires_and_is_bounded():
    events = sweep(n=600, gap=0.2)
    whole = replay(ScanDetector(), events)
    first = ScanDetector()
    head = replay(first, events[:100])
    second = ScanDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert [asdict(a) for a in head + replay(second, events[100:])] == [asdict(a) for a in whole]
    assert [asdict(a) for a in replay(ScanDetector(), events, timer_every=1.4)] == [
        asdict(a) for a in whole]
    second.on_timer(_time(events[-1]) + 61)
    assert second.snapshot()["arp"] == {}
    small = ScanDetector(ScanConfig(max_tracked_targets=100))
    assert [a.count for a in replay(small, sweep())] == [64]
    assert len(small.snapshot()["arp"]["10.0.8.66"]["asked"]) == 100
    assert small.evicted == 254 - 100


def test_config_rejects_what_is_not_a_network():
    with pytest.raises(pydantic.ValidationError, match="arp_ignored_senders"):
        ScanConfig(arp_ignored_senders=["gateway"])

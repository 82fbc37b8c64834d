"""Slow DoS: starved open connections from one source vs keep-alive pools and long polls."""
from __future__ import annotations

import json

from detectors.base import replay
from detectors.slowdos import SlowDosConfig, SlowDosDetector
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from tests.unit.detectors.ongoing import assert_kept_current

NETS = InternalNetworks()
WEB = "10.0.0.10"
T0 = 1_700_000_000.0


def _flow(i, t, src="203.0.113.50", final=False, state="S1", orig=24, resp=0, port=80,
          dur=5.0):
    record = FlowRecord(uid=f"C{src}-{i}", start=t, end=t + dur, proto=6, orig_ip=src,
                        orig_port=20000 + i, resp_ip=WEB, resp_port=port, orig_pkts=4,
                        resp_pkts=2, orig_bytes=orig, resp_bytes=resp, conn_state=state,
                        final=final)
    return flow_document(record, "s", NETS)


def slowloris(n=120, src="203.0.113.50"):
    # 100 connections a second; each reported 5 s in (interim), still open, no response
    return sorted((_flow(i, T0 + i / 100, src) for i in range(n)),
                  key=lambda d: d["@timestamp"])


def test_slowloris_alerts_at_the_threshold_and_again_when_it_doubles():
    alerts = replay(SlowDosDetector(), slowloris(120))
    assert [a.count for a in alerts] == [50, 100]
    first = alerts[0]
    assert first.category == "dos" and first.source_ip == "203.0.113.50"
    assert first.destination_ip == WEB and "no response" in first.message
    assert len(first.evidence) == 50 and first.technique_id == "T1499.002"


def test_keepalive_pools_and_closed_connections_do_not_count():
    pool = [_flow(i, T0 + i / 100, "10.0.0.2", resp=5000) for i in range(200)]   # answered
    closed = [_flow(i, T0 + i / 100, "10.0.0.3", final=True) for i in range(200)]
    refused = [_flow(i, T0 + i / 100, "10.0.0.4", state="REJ", orig=0) for i in range(200)]
    few = [_flow(i, T0 + i, f"10.1.0.{i}") for i in range(200)]    # long polls, 1 per client
    assert replay(SlowDosDetector(), pool + closed + refused + few) == []


def test_final_records_release_connections():
    det = SlowDosDetector(SlowDosConfig(min_connections=10))
    opened = [_flow(i, T0 + i / 10) for i in range(9)]
    ended = [_flow(i, T0 + i / 10, final=True, state="SF", resp=300) for i in range(9)]
    assert replay(det, opened + ended + [_flow(100 + i, T0 + 2 + i / 10) for i in range(9)]) == []


def test_stale_connections_expire_and_state_survives_a_restart():
    det = SlowDosDetector(SlowDosConfig(min_connections=10))
    replay(det, [_flow(i, T0 + i / 10) for i in range(9)])
    other = SlowDosDetector(SlowDosConfig(min_connections=10))
    other.restore(json.loads(json.dumps(det.snapshot())))
    (alert,) = other.on_event(_flow(50, T0 + 2), T0 + 2)       # the 10th: state carried over
    assert alert.count == 10
    det.on_timer(T0 + 1000)                                    # nothing heard for 1000 s
    assert det.snapshot()["targets"] == {}


def test_held_connections_keep_their_alert_current():
    # slowloris holding 60 connections for ten minutes: the count levels off at 60 and never
    # doubles. Each connection is re-reported every minute with its start time (and a longer
    # duration): the attack's clock is their last packets'.
    flows = [_flow(i, T0 + i / 10, dur=5.0 + 60 * k) for k in range(11) for i in range(60)]
    assert_kept_current(replay(SlowDosDetector(), flows), T0 + 6 + 600)

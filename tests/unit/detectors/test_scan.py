"""Scan detector: table-driven traffic shapes, event time, expiry, snapshot/restore."""
from __future__ import annotations

import json

import pytest

from detectors.scan import ScanConfig, ScanDetector
from watchkeeper import timeutil
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

NETS = InternalNetworks()


def _flow(i, t, src, dst, port, state="S0", proto=6, orig_bytes=0, resp_pkts=0):
    record = FlowRecord(uid=f"C{i}", start=t, end=t + 0.1, proto=proto, orig_ip=src,
                        orig_port=40000 + i % 20000, resp_ip=dst, resp_port=port,
                        orig_pkts=1, resp_pkts=resp_pkts, orig_bytes=orig_bytes,
                        conn_state=state)
    return flow_document(record, "s", NETS)


def _run(det, flows):
    alerts = []
    for flow in flows:
        alerts += det.on_event(flow, timeutil.parse(flow["event"]["start"]))
    return alerts


def vertical(n=50, gap=0.1):
    return [_flow(i, 1000 + i * gap, "10.0.0.5", "10.0.1.1", 1 + i,
                  "REJ" if i % 3 else "S0") for i in range(n)]


def horizontal(n=50):
    return [_flow(i, 1000 + i * 0.1, "10.0.0.6", f"10.0.2.{i}", 23) for i in range(n)]


def busy_web_client(n=200):
    return [_flow(i, 1000 + i * 0.1, "10.0.0.7", f"10.0.3.{i % 5}", 443, "SF",
                  orig_bytes=500, resp_pkts=5) for i in range(n)]


def udp_probe(n=50):
    return [_flow(i, 1000 + i * 0.1, "10.0.0.8", "10.0.1.1", 1000 + i, "S0", proto=17)
            for i in range(n)]


@pytest.mark.parametrize("flows, scanner, shape", [
    (vertical(), "10.0.0.5", "vertical"),
    (horizontal(), "10.0.0.6", "horizontal"),
    (udp_probe(), "10.0.0.8", "vertical"),
    (busy_web_client(), None, None),
    (vertical(n=15), None, None),                     # below min_targets
    (vertical(n=50, gap=5.0), None, None),            # slower than the window
])
def test_shapes(flows, scanner, shape):
    alerts = _run(ScanDetector(), flows)
    if scanner is None:
        assert alerts == []
        return
    assert {a.source_ip for a in alerts} == {scanner}
    assert shape in alerts[-1].message
    assert alerts[-1].technique_id == "T1046"
    assert all(0 <= v <= 1 for v in alerts[-1].subscores.values())
    assert len(alerts[-1].evidence) == min(100, alerts[-1].count)


def test_repeats_are_raised_only_as_the_scan_doubles():
    alerts = _run(ScanDetector(ScanConfig(min_targets=20)), vertical(n=90))
    assert [a.count for a in alerts] == [20, 40, 80]
    assert len({(a.first_seen, a.entity) for a in alerts}) == 1   # one alert, updated


def test_state_expires_on_event_time():
    det = ScanDetector()
    _run(det, vertical(n=10))
    assert det.snapshot()
    det.on_timer(1000 + 10 * 0.1 + det.config.window_seconds + 1)
    assert det.snapshot() == {}


def test_snapshot_restore_resumes_the_window():
    flows = vertical(n=30)
    whole = _run(ScanDetector(), flows)
    first = ScanDetector()
    _run(first, flows[:15])
    second = ScanDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))   # survives JSON
    assert [a.count for a in _run(second, flows[15:])] == [a.count for a in whole]


@pytest.mark.parametrize("params", [{"min_targets": 1}, {"window_seconds": 0},
                                    {"unknown": 3}, {"max_tracked_targets": 10}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        ScanConfig(**params)

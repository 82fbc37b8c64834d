"""Anomaly detector end to end on synthetic flows: train on a baseline, then a host that scans or
uploads is raised and explained by the right features, and normal hosts are not."""
from __future__ import annotations

import json
import random

import pytest

from detectors.anomaly import AnomalyConfig, AnomalyDetector
from detectors.features import FEATURE_NAMES, HostWindow, windows_from_events
from detectors.model import ModelMismatchError
from detectors.train import TrainReport, train
from watchkeeper import timeutil
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks

NETS = InternalNetworks()
W = 300
T0 = 1_700_000_100                     # a multiple of W
TEST_T = T0 + 100 * W                  # scoring starts well after the training period
_ids = iter(range(10**9))


def _flow(t, src, dst, port, state="SF", out=0, inn=0, dur=1.0):
    i = next(_ids)
    rec = FlowRecord(uid=f"C{i}", start=t, end=t + dur, proto=6, orig_ip=src,
                     orig_port=40000 + i % 20000, resp_ip=dst, resp_port=port,
                     orig_pkts=max(1, out // 1000), resp_pkts=inn // 1000, orig_bytes=out,
                     resp_bytes=inn, orig_ip_bytes=out + 40, resp_ip_bytes=inn + 40 * (inn > 0),
                     conn_state=state)
    return flow_document(rec, "s", NETS)


def workstation(rng, host, t0):
    """Browsing and a little internal traffic: 8-25 flows, mostly external, mostly downloads."""
    flows = []
    for _ in range(rng.randint(8, 25)):
        external = rng.random() < 0.7
        dst = (f"93.184.{rng.randint(0, 30)}.{rng.randint(1, 50)}" if external
               else f"10.1.0.{rng.randint(1, 6)}")
        port = rng.choice([443, 443, 80, 53]) if external else rng.choice([445, 53, 389, 88])
        ok = rng.random() > 0.03
        flows.append(_flow(t0 + rng.uniform(0, W - 1), host, dst, port, "SF" if ok else "S0",
                           int(rng.lognormvariate(6.5, 1.0)) if ok else 0,
                           int(rng.lognormvariate(9, 1.3)) if ok else 0, rng.expovariate(1 / 5)))
    return flows


def server(rng, host, t0):
    return [_flow(t0 + rng.uniform(0, W - 1), host, f"10.2.0.{rng.randint(1, 4)}",
                  rng.choice([5432, 6379]), "SF", int(rng.lognormvariate(7, 0.7)),
                  int(rng.lognormvariate(8, 0.8)), rng.expovariate(2))
            for _ in range(rng.randint(20, 40))]


def traffic(seed, hosts, windows, t_start):
    rng = random.Random(seed)
    flows = []
    for k in range(windows):
        for h in range(hosts):
            role = server if h % 5 == 0 else workstation
            flows += role(rng, f"10.0.0.{h + 1}", t_start + k * W)
    return sorted(flows, key=lambda f: f["@timestamp"])


def scan(host, t0, n=250):
    return [_flow(t0 + i * (W - 1) / n, host, f"10.3.{i // 200}.{i % 200 + 1}",
                  [22, 445, 3389][i % 3], "S0" if i % 2 else "REJ", dur=0.0) for i in range(n)]


def upload(rng, host, t0):
    return workstation(rng, host, t0) + [
        _flow(t0 + 20 + i * 60, host, "203.0.113.9", 443, "SF", 300_000_000, 150_000, 50.0)
        for i in range(4)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("model") / "anomaly.joblib")
    report = train(traffic(seed=1, hosts=20, windows=12, t_start=T0), path)
    assert isinstance(report, TrainReport) and report.path == path
    assert report.windows == 240 and report.hosts == 20
    assert (report.start, report.end) == (T0, T0 + 12 * W) and 0 < report.threshold < 100
    return path


def _run(det, flows, until):
    alerts = []
    for flow in sorted(flows, key=lambda f: f["@timestamp"]):
        alerts += det.on_event(flow, timeutil.parse(flow["@timestamp"]))
    return alerts + det.on_timer(until)


def _test_traffic():
    rng = random.Random(42)
    return (traffic(seed=2, hosts=20, windows=2, t_start=TEST_T) + scan("10.0.0.2", TEST_T)
            + upload(rng, "10.0.0.3", TEST_T + W))


def test_scanner_and_uploader_are_raised_and_explained(model_path):
    det = AnomalyDetector(AnomalyConfig(model_path=model_path))
    alerts = _run(det, _test_traffic(), until=TEST_T + 10 * W)
    by_host = {a.source_ip: a for a in alerts}
    assert set(by_host) == {"10.0.0.2", "10.0.0.3"}, [a.message for a in alerts]
    scanner, uploader = by_host["10.0.0.2"], by_host["10.0.0.3"]
    assert "failed_ratio" in scanner.subscores
    assert set(scanner.subscores) & {"distinct_dsts", "flows_out"}
    assert set(uploader.subscores) & {"bytes_out", "upload_ratio", "bytes_per_flow_out"}
    assert "bytes_out" in uploader.subscores or "bytes_per_flow_out" in uploader.subscores
    for alert in (scanner, uploader):
        assert alert.category == "anomaly" and alert.detector == "anomaly"
        assert all(0 <= v <= 1 for v in alert.subscores.values())
        assert len(alert.subscores) == 3 and alert.evidence
        assert alert.entity.startswith(alert.source_ip + "|")
    assert scanner.entity == f"10.0.0.2|{timeutil.format(TEST_T)}"
    assert "failed-connection ratio 0.9" in scanner.message and "usual 0.00" in scanner.message
    assert det.snapshot()["windows"] == {}                       # every window scored and gone


def test_min_score_is_a_floor_on_top_of_the_threshold(model_path):
    det = AnomalyDetector(AnomalyConfig(model_path=model_path, min_score=100))
    assert _run(det, _test_traffic(), until=TEST_T + 10 * W) == []


def test_no_model_means_no_alerts_and_no_state():
    det = AnomalyDetector()
    assert _run(det, scan("10.0.0.2", T0), until=T0 + 10 * W) == []
    assert det.snapshot()["windows"] == {}


def test_a_model_for_another_window_is_refused(model_path):
    with pytest.raises(ModelMismatchError, match="window"):
        AnomalyDetector(AnomalyConfig(model_path=model_path, window_seconds=600))


def test_windows_close_on_event_time_and_late_events_are_counted(model_path):
    det = AnomalyDetector(AnomalyConfig(model_path=model_path, grace_seconds=30))
    det.on_event(_flow(TEST_T + 5, "10.0.0.9", "10.1.0.1", 445, out=100, inn=100),
                 TEST_T + 5)
    assert len(det.snapshot()["windows"]) == 1
    assert det.on_timer(TEST_T + W + 29) == [] and len(det.snapshot()["windows"]) == 1
    det.on_timer(TEST_T + W + 30)
    assert det.snapshot()["windows"] == {}
    det.on_event(_flow(TEST_T + 6, "10.0.0.9", "10.1.0.1", 445), TEST_T + 6)
    assert det.late == 1 and det.snapshot()["windows"] == {}


def test_open_windows_are_bounded(model_path):
    det = AnomalyDetector(AnomalyConfig(model_path=model_path, max_windows=10))
    for h in range(15):
        det.on_event(_flow(TEST_T + h, f"10.0.5.{h}", "10.1.0.1", 445), TEST_T + h)
    assert len(det.snapshot()["windows"]) == 10 and det.dropped == 5


def test_snapshot_restore_through_json_gives_the_same_alerts(model_path):
    flows = sorted(_test_traffic(), key=lambda f: f["@timestamp"])
    config = AnomalyConfig(model_path=model_path)
    whole = _run(AnomalyDetector(config), flows, until=TEST_T + 10 * W)
    first = AnomalyDetector(config)
    half = len(flows) // 2
    before = _run(first, flows[:half], until=timeutil.parse(flows[half - 1]["@timestamp"]))
    second = AnomalyDetector(config)
    second.restore(json.loads(json.dumps(first.snapshot())))
    after = _run(second, flows[half:], until=TEST_T + 10 * W)
    assert [(a.entity, a.message) for a in before + after] == \
           [(a.entity, a.message) for a in whole]


def test_features_are_the_documented_list_and_survive_json():
    flows = scan("10.0.0.2", T0, n=30)
    (win,) = windows_from_events(flows, W)
    assert len(win.vector()) == len(FEATURE_NAMES)
    assert HostWindow.from_json(json.loads(json.dumps(win.to_json()))).vector() == win.vector()
    vec = dict(zip(FEATURE_NAMES, win.vector()))
    assert vec["failed_ratio"] == 1.0 and vec["external_ratio"] == 0.0


def test_training_needs_enough_windows(tmp_path):
    with pytest.raises(ValueError, match="host windows"):
        train(traffic(seed=3, hosts=2, windows=2, t_start=T0), str(tmp_path / "m.joblib"))
    with pytest.raises(ValueError, match="sensitivity"):
        train([], str(tmp_path / "m.joblib"), sensitivity=2)


@pytest.mark.parametrize("params", [{"window_seconds": 5}, {"min_score": 101},
                                    {"grace_seconds": -1}, {"max_windows": 1}, {"nosuch": 1}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        AnomalyConfig(**params)

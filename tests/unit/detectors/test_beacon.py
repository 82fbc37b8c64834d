"""Beacon detector: clocks with jitter, benign look-alikes, event time, snapshot, captures."""
from __future__ import annotations

import json
import random
from dataclasses import asdict

import pytest

from detectors.beacon import BeaconConfig, BeaconDetector, bowley_skew, madm
from watchkeeper import timeutil
from watchkeeper.documents import FlowRecord, alert_document, flow_document
from watchkeeper.networks import InternalNetworks
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current

NETS = InternalNetworks()


def _flow(i, t, src="10.0.0.5", dst="203.0.113.7", port=443, orig_bytes=300, state="SF",
          proto=6):
    record = FlowRecord(uid=f"C{src}{dst}{port}{i}", start=t, end=t + 0.3, proto=proto,
                        orig_ip=src, orig_port=40000 + i % 20000, resp_ip=dst, resp_port=port,
                        orig_pkts=3, resp_pkts=3, orig_bytes=orig_bytes, resp_bytes=1200,
                        conn_state=state)
    return flow_document(record, "s", NETS)


def clock(n=40, period=60.0, jitter=0.2, size=300, size_jitter=5, seed=1, **kw):
    """A beacon: `period` seconds +- `jitter` (fraction, uniform), sizes +- size_jitter bytes."""
    rng = random.Random(seed)
    t, flows = 1000.0, []
    for i in range(n):
        flows.append(_flow(i, t, orig_bytes=size and size + rng.randint(-size_jitter, size_jitter),
                           **kw))
        t += period * (1 + rng.uniform(-jitter, jitter))
    return flows


def browser(pages=30, seed=2):
    """Bursts of parallel connections to one CDN, then reading pauses of 5 s - 5 min."""
    rng = random.Random(seed)
    t, flows = 1000.0, []
    for page in range(pages):
        for j in range(rng.randint(3, 8)):
            flows.append(_flow(page * 10 + j, t + rng.uniform(0, 0.4),
                               orig_bytes=rng.randint(300, 3000)))
        t += rng.uniform(5, 300)
    return flows


def _run(det, flows, timer_every=None):
    alerts, last = [], None
    for i, flow in enumerate(flows):
        now = timeutil.parse(flow["@timestamp"])
        alerts += det.on_event(flow, now)
        if timer_every and i % timer_every == 0:
            last = now if last is None else max(last, now)
            alerts += det.on_timer(last)
    return alerts


@pytest.mark.parametrize("flows, beacon", [
    (clock(), True),                                          # 60 s +- 20 %
    (clock(period=3600, n=30, jitter=0.1), True),             # hourly, +- 10 %
    (clock(period=2.0, jitter=0.0, size_jitter=0, n=25), True),
    (clock(period=30, jitter=0.1, proto=17, port=8443), True),
    (browser(), False),
    (clock(port=123), False),                                 # NTP: regular by design
    (clock(n=15), True),                                      # 14 periods: a steady clock
    (clock(n=12), False),                                     # too few connections
    (clock(n=40, period=60.0, jitter=0.3, seed=5), True),     # +- 30 %
    (clock(jitter=0.9), False),                               # not a clock
    (clock(size=0, state="S0"), False),                 # unanswered SYN retries
])
def test_shapes(flows, beacon):
    alerts = _run(BeaconDetector(), flows)
    assert bool(alerts) == beacon
    for alert in alerts:
        assert alert.source_ip == "10.0.0.5" and alert.destination_ip == "203.0.113.7"
        assert alert.technique_id == "T1071"
        assert set(alert.subscores) == set(BeaconConfig().weights)
        assert all(0 <= v <= 1 for v in alert.subscores.values())
        assert len(alert.evidence) <= 100


def test_score_is_the_weighted_sum_of_its_subscores():
    config = BeaconConfig()
    alert = _run(BeaconDetector(config), clock(jitter=0.0, size_jitter=0))[0]
    total = sum(config.weights[k] * v for k, v in alert.subscores.items())
    assert total >= config.threshold
    assert f"{total:.2f}" in alert.message
    assert alert.score == pytest.approx(total, abs=1e-3)


def test_risk_score_uses_the_weighted_composite_not_the_plain_mean():
    weights = {**BeaconConfig().weights}
    heavy = max(weights, key=weights.get)      # put all weight on one subscore
    config = BeaconConfig(weights={k: float(k == heavy) for k in weights}, threshold=0.5)
    alert = _run(BeaconDetector(config), clock())[0]
    doc = alert_document(alert, created=0.0)
    band = (alert.severity - 1) * 25
    assert doc["event"]["risk_score"] == pytest.approx(band + 25 * alert.subscores[heavy],
                                                       abs=0.06)
    mean = sum(alert.subscores.values()) / len(alert.subscores)
    assert alert.subscores[heavy] != pytest.approx(mean, abs=0.01)   # so the two differ


def test_repeats_are_raised_only_as_the_pair_doubles():
    det = BeaconDetector(BeaconConfig(refresh_seconds=3600))
    alerts = _run(det, clock(n=90, jitter=0.0, size_jitter=0))
    assert [a.count for a in alerts] == [13, 26, 52]
    assert len({a.entity for a in alerts}) == 1


def test_a_beacon_that_goes_on_keeps_its_alert_current():
    # Five hours of a 5-minute clock: doubling alone last raised at the 52nd check-in, ~4 h
    # 15 min in. Refreshed at the first check-in a minute after each raise: one period apart.
    alerts = _run(BeaconDetector(), clock(n=60, period=300.0, jitter=0.0, size_jitter=0))
    assert_kept_current(alerts, 1000.0 + 59 * 300.0, most=300.0)
    assert [a.count for a in alerts][-1] == 60


def test_a_fast_beacon_keeps_one_alert_as_its_history_is_trimmed():
    # A 2 s clock for three hours, 20 timestamps kept: the oldest kept start moves on every
    # check-in, but the alert keeps the episode's start (its id's hour) and stays current.
    det = BeaconDetector(BeaconConfig(max_timestamps=20))
    alerts = _run(det, clock(n=5400, period=2.0, jitter=0.0, size_jitter=0))
    docs = {alert_document(a, created=0.0)["event"]["id"] for a in alerts}
    assert len(docs) == 1 and alerts[0].first_seen == 1000.0
    assert_kept_current(alerts, 1000.0 + 5399 * 2.0, most=62.0)


def test_a_beacon_that_stops_keeping_its_clock_is_not_refreshed():
    flows = clock(n=30, jitter=0.0, size_jitter=0)
    t = timeutil.parse(flows[-1]["@timestamp"])
    rng = random.Random(9)
    for i in range(60):         # then bursts at random moments, random sizes
        t += rng.uniform(0.5, 400.0)
        flows.append(_flow(100 + i, t, orig_bytes=rng.randint(300, 30_000)))
    alerts = _run(BeaconDetector(), flows)
    assert alerts and max(a.last_seen for a in alerts) < timeutil.parse(flows[-1]["@timestamp"])


@pytest.mark.parametrize("values, skew, spread", [
    ([1, 2, 3, 4, 5], 0.0, 1.0),
    ([5, 5, 5, 5], 0.0, 0.0),
    ([1, 1, 1, 2, 10], 0.0, 0.0),     # degenerate middle: RITA scores it 0
    ([1, 2, 2, 3, 10, 11], 0.84, 1.0),   # long right tail
])
def test_rita_statistics(values, skew, spread):
    assert bowley_skew(values) == pytest.approx(skew, abs=0.01)
    assert madm(values) == pytest.approx(spread)


def test_out_of_order_arrival_and_timers_do_not_change_alerts():
    flows = clock(n=45)
    in_order = _run(BeaconDetector(), flows)
    swapped = list(flows)
    for i in range(0, len(swapped) - 1, 2):      # flows are emitted when they end, not start
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    det = BeaconDetector()
    assert _run(det, swapped) and in_order
    assert det.snapshot()["pairs"]["10.0.0.5|203.0.113.7|443"]["starts"] == sorted(
        timeutil.parse(f["@timestamp"]) for f in flows)
    timed = _run(BeaconDetector(), flows, timer_every=1)
    assert [asdict(a) for a in timed] == [asdict(a) for a in in_order]


def test_state_expires_on_event_time():
    det = BeaconDetector()
    _run(det, clock(n=10))
    assert det.snapshot()["pairs"]
    det.on_timer(1000 + 10 * 72 + det.config.window_seconds + 1)
    assert det.snapshot()["pairs"] == {}


def test_memory_is_bounded_and_counted():
    det = BeaconDetector(BeaconConfig(max_pairs=100, max_timestamps=20))
    _run(det, clock(n=300, period=2.0))
    assert len(det.snapshot()["pairs"]["10.0.0.5|203.0.113.7|443"]["starts"]) == 20
    for i in range(150):
        det.on_event(_flow(i, 5000 + i, dst=f"198.51.100.{i % 250}", port=1000 + i), 5000 + i)
    assert len(det.snapshot()["pairs"]) == 100 and det.evicted_pairs == 51


def test_snapshot_restore_mid_stream_gives_the_same_alerts():
    flows = clock(n=90)
    whole = _run(BeaconDetector(), flows)
    first = BeaconDetector()
    head = _run(first, flows[:30])
    second = BeaconDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    tail = _run(second, flows[30:])
    assert [asdict(a) for a in head + tail] == [asdict(a) for a in whole]


@pytest.mark.parametrize("params", [
    {"weights": {"interval_skew": 0.5, "interval_dispersion": 0.5, "size_skew": 0.5,
                 "size_dispersion": 0.0, "connection_count": 0.0}},          # sums to 1.5
    {"weights": {"interval_skew": 1.0}},                                     # names missing
    {"weights": {"interval_skew": 1.2, "interval_dispersion": -0.2, "size_skew": 0,
                 "size_dispersion": 0, "connection_count": 0}},              # out of [0, 1]
    {"threshold": 0.1}, {"min_connections": 1}, {"max_timestamps": 5},
    {"min_connections": 50, "full_count_connections": 30}, {"unknown": 1},
])
def test_config_rejects_invalid_values(params):
    with pytest.raises(ValueError):
        BeaconConfig(**params)


# Ground truth (MANIFEST.md "Detection ground truth" #6) and benign negatives.
CAPTURES = [
    ("c2-beacon/slips_test-cc-capture-1.pcap", {"147.32.80.37->141.193.213.21:443"}),
    ("c2-beacon/slips_test-cc-capture-2.pcap", {"147.32.80.37->141.193.213.20:443"}),
    ("benign/cs_http_espn.pcapng", set()),
    ("benign/zeek_workshop_2011_browse.pcap", set()),
    ("benign/zeek_var-services-std-ports.pcap", set()),     # includes NTP
    ("scan/slips_test7-iot-telnet-scan.pcap", set()),       # NTP, DNS, SSH + a scan
    ("dos/stopddos_amp.TCP.syn.lowrate-multisource.pcapng", set()),   # regular SYNs, no data
]


@pytest.mark.parametrize("path, expected", CAPTURES)
def test_shared_captures(path, expected):
    from collectors.capture import iter_flow_documents
    docs = iter_flow_documents([str(data_file(path))], observer="t", networks=InternalNetworks())
    alerts = _run(BeaconDetector(), list(docs), timer_every=25)
    assert {a.entity for a in alerts} == expected


def _first_alert_period(flows):
    det = BeaconDetector()
    for n, flow in enumerate(flows):
        if det.on_event(flow, timeutil.parse(flow["@timestamp"])):
            return n                     # connections before this one = periods elapsed
    return None


@pytest.mark.parametrize("period", [2.0, 5.0, 60.0, 600.0, 3600.0])
@pytest.mark.parametrize("jitter", [0.1, 0.3])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_beacon_named_within_a_dozen_periods(period, jitter, seed):
    """Issue 14 goal: periods from seconds to an hour, jitter up to +-30 %."""
    periods = _first_alert_period(clock(n=60, period=period, jitter=jitter, seed=seed))
    assert periods is not None and periods <= 13


def poisson(n=200, mean=60.0, seed=4):
    """People (and the lab's benign background): exponential gaps, same request each time."""
    rng = random.Random(seed)
    t, flows = 1000.0, []
    for i in range(n):
        flows.append(_flow(i, t, orig_bytes=300))
        t += rng.expovariate(1 / mean)
    return flows


@pytest.mark.parametrize("seed", range(5))
def test_poisson_arrivals_are_no_clock(seed):
    assert _run(BeaconDetector(), poisson(seed=seed)) == []


def _dns(i, t, name, src="10.0.0.9", dst="10.0.0.53"):
    return {"@timestamp": timeutil.format(t),
            "event": {"id": f"q{i}", "dataset": "watchkeeper.dns"},
            "source": {"ip": src}, "destination": {"ip": dst, "port": 53},
            "dns": {"question": {"name": name, "type": "A"}}}


def dns_poll(n=40, period=30.0, jitter=0.3, fresh=True, seed=6):
    rng = random.Random(seed)
    t, events = 1000.0, []
    for i in range(n):
        nonce = "".join(rng.choice("abcdef0123456789") for _ in range(10)) if fresh else "api"
        events.append(_dns(i, t, f"{nonce}.poll.c2-example.net"))
        t += period * (1 + rng.uniform(-jitter, jitter))
    return events


def test_a_beacon_over_dns_is_named():
    alerts = _run(BeaconDetector(), dns_poll())
    assert alerts and alerts[0].entity == "10.0.0.9->c2-example.net:dns"
    assert alerts[0].destination_ip is None and alerts[0].count <= 13
    assert "over DNS" in alerts[0].message


def test_dns_polls_of_the_same_name_and_resolvers_are_not_beacons():
    assert _run(BeaconDetector(), dns_poll(fresh=False)) == []      # a timer re-resolving
    inventory = [_dns(i, 1000 + i * 2.0, f"ws{i:05d}.corp.lan") for i in range(100)]
    assert _run(BeaconDetector(), inventory) == []                  # host names, not nonces
    clients = dns_poll()
    relayed = [_dns(500 + i, timeutil.parse(e["@timestamp"]) + 0.01,
                    e["dns"]["question"]["name"], src="10.0.0.53", dst="198.51.100.53")
               for i, e in enumerate(dns_poll())]
    merged = sorted(clients + relayed, key=lambda e: e["@timestamp"])
    assert {a.source_ip for a in _run(BeaconDetector(), merged)} == {"10.0.0.9"}


def test_dns_poll_memory_expires_with_the_window():
    det = BeaconDetector()
    _run(det, dns_poll(n=5))
    assert det.snapshot()["dns_poll_names"] and det.snapshot()["dns_resolvers"]
    det.on_timer(1000 + 5 * 40 + det.config.window_seconds + 86_400 + 1)
    assert det.snapshot()["dns_poll_names"] == {} and det.snapshot()["dns_resolvers"] == {}

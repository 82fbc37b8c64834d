"""DoS detector: flood shapes vs look-alikes, baseline, event time, expiry, snapshot/restore."""
from __future__ import annotations

import json
import random

import pytest

from detectors.base import replay
from detectors.dos import DosConfig, DosDetector
from watchkeeper import timeutil
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current

NETS = InternalNetworks()
TARGET = "10.0.0.1"


def _flow(i, t, src, dst=TARGET, port=443, state="S0", proto=6, orig_bytes=0, pkts=1,
          resp_pkts=0, dur=0.0):
    record = FlowRecord(uid=f"C{i}", start=t, end=t + dur, proto=proto, orig_ip=src,
                        orig_port=1024 + i % 60000, resp_ip=dst, resp_port=port,
                        orig_pkts=pkts, resp_pkts=resp_pkts, orig_bytes=orig_bytes,
                        orig_ip_bytes=40 * pkts, conn_state=state)
    return flow_document(record, "s", NETS)


def _run(det, flows, timer_every=5.0):
    return replay(det, flows, timer_every)


def _ext(i):
    return f"198.{18 + i // 65536 % 100}.{i // 256 % 256}.{i % 256}"


def syn_flood_single(n=300):
    return [_flow(i, 1000 + i / n, "203.0.113.7") for i in range(n)]


def syn_flood_spoofed(n=1000, seconds=1.0):
    return [_flow(i, 1000 + i * seconds / n, _ext(i)) for i in range(n)]


def udp_flood(n=500):
    return [_flow(i, 1000 + i / n, _ext(i), port=53, state="S0", proto=17) for i in range(n)]


def icmp_flood(n=500):
    return [_flow(i, 1000 + i / n, _ext(i), port=8, state="OTH", proto=1) for i in range(n)]


def busy_web_server(rate=80, seconds=60):
    """Many real clients, completed sessions, below the floor every second."""
    return [_flow(i, 1000 + i / rate, _ext(i % 400), state="SF", orig_bytes=600, pkts=6,
                  resp_pkts=8, dur=0.3) for i in range(rate * seconds)]


def quiet_host_burst():
    """1 conn/s for a minute, then 50 conn/s: a jump well below the absolute floor."""
    calm = [_flow(i, 1000 + i, "10.0.5.5", state="SF", orig_bytes=100) for i in range(60)]
    burst = [_flow(100 + i, 1060 + i / 50, "10.0.5.5", state="SF", orig_bytes=100)
             for i in range(50)]
    return calm + burst


def vertical_scan(n=1000):
    return [_flow(i, 1000 + i / 500, "203.0.113.9", port=1 + i) for i in range(n)]


def monitoring_poller():
    """SNMP/ICMP poller: 40 targets x 1 probe every 10 s -> never many flows to one target."""
    return [_flow(i, 1000 + i * 0.25, "10.0.9.9", dst=f"10.0.1.{i % 40}", port=161,
                  state="SF", proto=17, resp_pkts=1) for i in range(2000)]


def late_flushed_beacon():
    """300 flows spread over 10 min, all reported at once at the end (flow table flush)."""
    return [_flow(i, 1000 + i * 2.0, "10.0.0.9", state="SF", orig_bytes=300, resp_pkts=5)
            for i in range(300)]


@pytest.mark.parametrize("flows, source, kind, technique", [
    (syn_flood_single(), "203.0.113.7", "syn", "T1499"),
    (syn_flood_spoofed(), None, "syn", "T1499"),
    (udp_flood(), None, "udp", "T1498"),
    (icmp_flood(), None, "icmp", "T1498"),
    (busy_web_server(), "-", None, None),
    (quiet_host_burst(), "-", None, None),
    (vertical_scan(), "-", None, None),
    (monitoring_poller(), "-", None, None),
    (late_flushed_beacon(), "-", None, None),
])
def test_shapes(flows, source, kind, technique):
    alerts = _run(DosDetector(), flows)
    if kind is None:
        assert alerts == []
        return
    last = alerts[-1]
    assert {a.entity for a in alerts} == {TARGET}
    assert last.destination_ip == TARGET and last.source_ip == source
    assert last.rule_id == f"wk.dos.{kind}_flood" and last.technique_id == technique
    assert last.related_ips[0] == TARGET and len(last.related_ips) <= 50
    assert set(last.subscores) == {"rate_vs_baseline", "half_open_ratio", "source_spread"}
    assert all(0 <= v <= 1 for v in last.subscores.values())
    assert len(last.evidence) <= 100
    if source is None:
        assert last.subscores["source_spread"] > 0.9
    if kind == "syn":
        assert last.subscores["half_open_ratio"] == 1.0


def test_repeats_are_raised_only_as_the_flood_doubles():
    alerts = _run(DosDetector(), syn_flood_spoofed(n=1000))
    counts = [a.count for a in alerts]
    assert counts == sorted(counts) and all(b >= 2 * a for a, b in zip(counts, counts[1:]))
    assert len({(a.first_seen, a.entity) for a in alerts}) == 1   # one alert, updated


def _waves(pause, first=3000, second=1000):
    """Two spoofed SYN floods against one target; the second smaller, `pause` s later."""
    one = [_flow(i, 1000 + i * 3.0 / first, _ext(i)) for i in range(first)]
    start = 1003 + pause
    two = [_flow(first + i, start + i / second, _ext(first + i)) for i in range(second)]
    return one + two, start


@pytest.mark.parametrize("pause", [15.0, 45.0])
def test_a_second_wave_inside_the_episode_is_raised_again(pause):
    """Within the episode gap the waves are one flood (one alert), but the second wave brings
    the stored alert up to date as it starts, though the total never doubles."""
    flows, start = _waves(pause)
    alerts = _run(DosDetector(), flows)
    assert len({(a.first_seen, a.entity) for a in alerts}) == 1
    second = [a for a in alerts if a.last_seen >= start]
    assert second, "the second wave was never raised"
    before = max(a.count for a in alerts if a.last_seen < start)
    assert before < second[0].count < 2 * before and second[0].last_seen < start + 1.0
    # Every flow counts, also those of each bucket before it crossed the floor: the first
    # wave's 3,000 and the second's first 100 (min_flows) when it crossed.
    assert second[0].count == 3000 + DosConfig().min_flows


def test_a_long_flood_keeps_its_alert_current():
    # Five minutes at 200 flows/s: doubling alone would raise at ~1, 2, 4 … 128 and 256 s of
    # flood, leaving the stored alert's last-seen time up to 2 minutes behind.
    rate, seconds = 200, 300
    flows = [_flow(i, 1000 + i / rate, _ext(i)) for i in range(rate * seconds)]
    alerts = _run(DosDetector(), flows)
    assert_kept_current(alerts, 1000 + seconds)
    assert alerts[-1].count >= rate * (seconds - 66)


def test_a_flood_that_stops_is_stored_with_its_final_count():
    # 1,500 spoofed SYNs in 1.5 s, raised as the count doubles. A web server's ordinary
    # sessions move the clock on; a refresh period (60 s) after the flood, its final count
    # (every flow) is sent once.
    flood = syn_flood_spoofed(n=1500, seconds=1.5)
    clock = [_flow(5000 + k, 1002 + 5 * k, "10.0.9.9", dst="10.0.0.2", state="SF",
                   orig_bytes=600, pkts=6, resp_pkts=8) for k in range(20)]
    stream = sorted(flood + clock, key=lambda f: f["@timestamp"])
    alerts = _run(DosDetector(), stream)
    counts = [a.count for a in alerts]
    assert counts[-1] == 1500 and counts[-2] < 1500 and counts.count(1500) == 1
    assert len({(a.first_seen, a.entity) for a in alerts}) == 1
    early = [f for f in stream if timeutil.parse(f["@timestamp"]) < 1001.5 + 55]
    assert 1500 not in [a.count for a in _run(DosDetector(), early)]


def test_a_flood_without_a_pause_is_not_raised_again_before_it_doubles():
    flows, _ = _waves(pause=2.0)     # shorter than resume_seconds: one continuing flood
    alerts = _run(DosDetector(), flows)
    counts = [a.count for a in alerts]
    assert all(b >= 2 * a for a, b in zip(counts, counts[1:]))
    assert max(counts) < 4000


def _noisy_server(seconds, start=1000.0, seed=1):
    rng, flows, i = random.Random(seed), [], 0
    for sec in range(seconds):
        n = rng.randint(60, 140)
        flows += [_flow(i + k, start + sec + k / n, _ext(i + k), state="SF", orig_bytes=500,
                        resp_pkts=4) for k in range(n)]
        i += n
    return flows


def test_baseline_raises_the_bar_for_a_busy_target():
    cfg = DosConfig(min_flows=20, warmup_seconds=60, max_lateness_seconds=2, ewma_alpha=0.05)
    det = DosDetector(cfg)
    _run(det, _noisy_server(60))          # warm-up: only the floor applies (it may alert)
    assert _run(det, _noisy_server(60, start=1060)) == []   # 60-140 conn/s is its normal
    more = [_flow(10**6 + k, 1121 + k / 150, _ext(k), state="SF", orig_bytes=500, resp_pkts=4)
            for k in range(150)]
    assert _run(det, more) == []                      # busy but within its own deviation
    flood = [_flow(2 * 10**6 + k, 1123 + k / 3000, _ext(k)) for k in range(3000)]
    alerts = _run(det, flood)
    assert alerts and alerts[0].subscores["rate_vs_baseline"] > 0.5


def test_replay_speed_and_timer_cadence_do_not_change_alerts():
    flows = late_flushed_beacon() + syn_flood_spoofed(n=800)
    slow = _run(DosDetector(), flows, timer_every=1.0)
    fast = _run(DosDetector(), flows, timer_every=60.0)
    assert [(a.count, a.first_seen) for a in slow] == [(a.count, a.first_seen) for a in fast]


def test_out_of_order_records_land_in_their_own_bucket():
    flows = syn_flood_spoofed(n=400)
    random.Random(3).shuffle(flows)
    assert _run(DosDetector(), flows)


def test_state_expires_on_event_time():
    det = DosDetector()
    _run(det, syn_flood_single(50))
    assert det.snapshot()["targets"]
    det.on_timer(1001 + det.config.idle_expiry_seconds + 1)
    assert det.snapshot()["targets"] == {}


def test_snapshot_restore_mid_stream_gives_identical_alerts():
    flows = _noisy_server(20) + syn_flood_spoofed(n=900, seconds=2.0)
    flows = sorted(flows, key=lambda f: f["@timestamp"])
    whole = _run(DosDetector(), flows)
    first = DosDetector()
    cut = len(flows) // 2 + 300
    before = _run(first, flows[:cut])
    second = DosDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))   # survives JSON
    after = _run(second, flows[cut:])
    assert [(a.count, a.message) for a in before + after] == \
           [(a.count, a.message) for a in whole]


@pytest.mark.parametrize("params", [{"min_flows": 1}, {"bucket_seconds": 0}, {"unknown": 3},
                                    {"ewma_alpha": 0}, {"max_sources": 1},
                                    {"single_source_share": 0.2}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        DosConfig(**params)


def _capture_alerts(name):
    path = data_file(name)
    from collectors.capture import iter_flow_documents
    det, alerts, next_timer = DosDetector(), [], None
    for doc in iter_flow_documents([str(path)], observer="t", networks=InternalNetworks()):
        now = timeutil.parse(doc["@timestamp"])
        alerts += det.on_event(doc, now)
        next_timer = now + 5 if next_timer is None else next_timer
        if now >= next_timer:
            alerts += det.on_timer(now)
            next_timer = now + 5
    return alerts


def test_capture_spoofed_syn_flood():
    alerts = _capture_alerts("dos/stopddos_pkt.TCP.synflood.spoofed.pcap")
    assert {a.entity for a in alerts} == {"10.10.10.10"}
    last = alerts[-1]
    assert last.source_ip is None and last.rule_id == "wk.dos.syn_flood"
    assert len(last.related_ips) == 50 and last.subscores["source_spread"] > 0.9
    assert last.count > 10_000


def test_capture_single_source_syn_flood_200():
    alerts = _capture_alerts("dos/sv_syn-flood-200.pcap")
    assert alerts and {(a.source_ip, a.destination_ip) for a in alerts} == \
        {("192.0.2.10", "198.51.100.5")}
    assert alerts[0].count > 100          # Suricata's detection_filter fires from packet 101


@pytest.mark.parametrize("name", ["benign/cs_http_espn.pcapng", "scan/cs_synscan.pcapng",
                                  "c2-beacon/slips_test-cc-capture-1.pcap",
                                  "benign/zeek_smb2.pcap", "benign/zeek_http-bro.org.pcap"])
def test_capture_benign_does_not_alert(name):
    assert _capture_alerts(name) == []


class _FoldEveryEvent(DosDetector):
    """The fold as it was before its early return: walks every open bucket on every event."""

    def _fold(self, target, newest):
        alpha, until = self.config.ewma_alpha, newest - self._horizon_buckets()
        for index in sorted(i for i in target.buckets if i <= until):
            flows, packets = target.buckets.pop(index)[:2]
            target.decay(index - target.folded - 1, alpha)
            if not self._teaches_flood(target, flows, packets):
                target.flow_base.update(flows, alpha)
                target.packet_base.update(packets, alpha)
            target.folded = index
        if until > target.folded:
            target.decay(until - target.folded, alpha)
            target.folded = until


def test_the_fold_skips_no_bucket_it_should_close():
    """The early return (nothing older than the horizon is open) changes no baseline, bucket
    or alert: same state as walking every bucket on every event, with late and quiet spells."""
    rng = random.Random(7)
    flows, t = [], 1000.0
    for i in range(6000):
        t += rng.expovariate(20) + (rng.random() < 0.002) * rng.uniform(30, 900)
        late = rng.random() < 0.05
        flows.append(_flow(i, t - (rng.uniform(0, 40) if late else 0), _ext(rng.randrange(50)),
                           dst=f"10.0.0.{rng.randrange(1, 6)}", pkts=rng.randrange(1, 9)))
    flows += [_flow(10_000 + i, t + 1 + i / 800, _ext(i)) for i in range(800)]    # a flood
    config = DosConfig(warmup_seconds=60, max_lateness_seconds=10)
    ours, reference = DosDetector(config), _FoldEveryEvent(config)
    alerts = _run(ours, flows)
    assert alerts and alerts == _run(reference, flows)
    assert json.dumps(ours.snapshot(), sort_keys=True) == \
        json.dumps(reference.snapshot(), sort_keys=True)
    assert ours.late == reference.late > 0

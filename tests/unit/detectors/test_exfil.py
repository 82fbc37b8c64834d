"""Exfiltration detector: outbound volume vs floor and the host's own baseline."""
from __future__ import annotations

import json

import pytest

from detectors.base import replay
from detectors.exfil import ExfilConfig, ExfilDetector
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current

NETS = InternalNetworks()
HOST, OUT = "10.0.0.5", "203.0.113.9"
MB, H = 1_000_000, 3600.0
DAY0 = 1_700_000_000.0 - 1_700_000_000.0 % H    # hour-aligned


def _flow(i, t, sent, dst=OUT, src=HOST, port=443, received=2000, final=True, dur=60.0):
    record = FlowRecord(uid=f"C{i}", start=t, end=t + dur, proto=6, orig_ip=src,
                        orig_port=40000 + i % 20000, resp_ip=dst, resp_port=port,
                        orig_pkts=max(1, sent // 1400), resp_pkts=10, orig_bytes=sent,
                        resp_bytes=received, orig_ip_bytes=sent, resp_ip_bytes=received,
                        conn_state="SF", final=final)
    return flow_document(record, "s", NETS)


def _run(det, flows, timer_every=300.0):
    return replay(det, flows, timer_every)


def history(hours=30, per_hour=2 * MB, dst="198.51.100.20"):
    """A normal office host: a few MB a day uploaded to mail/web services."""
    return [_flow(i, DAY0 + i * H + 600, per_hour, dst=dst) for i in range(hours)]


T = DAY0 + 30 * H      # first hour after the 30 h of history


def spike(total=300 * MB, dst=OUT, port=443, parts=6, start=T + 60):
    return [_flow(1000 + i, start + i * 300, total // parts, dst=dst, port=port)
            for i in range(parts)]


def download():
    """A 4 GB ISO download: bytes come IN on an outbound flow."""
    return [_flow(2000, T + 60, 80_000, received=4000 * MB)]


def internal_backup():
    return [_flow(3000 + i, T + 60 + i, 500 * MB, dst="10.0.9.9", port=22) for i in range(10)]


def cdn_many_small():
    """Browsing: hundreds of CDN flows with small uploads."""
    return [_flow(4000 + i, T + i * 5, 30_000, dst=f"198.51.{i // 200}.{i % 200}")
            for i in range(600)]


def spread_exfil():
    """300 MB sliced across 30 cloud-storage addresses, 10 MB each."""
    return [_flow(5000 + i, T + 60 + i * 60, 10 * MB, dst=f"192.0.2.{i}") for i in range(30)]


@pytest.mark.parametrize("flows, entity, technique", [
    (spike(), f"{HOST}|{OUT}", "T1041"),
    (spike(port=21), f"{HOST}|{OUT}", "T1048"),
    (spread_exfil(), f"{HOST}|*", "T1041"),
    (download(), None, None),
    (internal_backup(), None, None),
    (cdn_many_small(), None, None),
    (spike(total=30 * MB), None, None),                 # above baseline, below the floor
])
def test_shapes(flows, entity, technique):
    det = ExfilDetector()
    assert _run(det, history()) == []
    alerts = _run(det, flows)
    if entity is None:
        assert alerts == []
        return
    last = alerts[-1]
    assert last.entity == entity and last.source_ip == HOST
    assert last.technique_id == technique
    assert set(last.subscores) == {"volume_vs_baseline", "volume_floor", "destination_rarity"}
    assert all(0 <= v <= 1 for v in last.subscores.values())
    assert last.subscores["destination_rarity"] == 1.0     # never used before
    assert last.subscores["volume_vs_baseline"] > 0.9
    assert 0 < len(last.evidence) <= 100


def test_a_heavy_uploader_is_judged_against_its_own_baseline():
    """A host syncing ~400 MB every hour (a CAD workstation to cloud storage) stays quiet."""
    det = ExfilDetector()
    steady = [_flow(i, DAY0 + i * H + 600, (380 + 20 * (i % 3)) * MB) for i in range(40)]
    alerts = _run(det, steady)
    assert all(a.first_seen < DAY0 + 24 * H for a in alerts)   # at most while warming up
    assert _run(det, [_flow(99, DAY0 + 40 * H + 600, 420 * MB)]) == []
    assert _run(det, [_flow(100, DAY0 + 40 * H + 900, 3000 * MB)])


def test_warm_up_needs_a_higher_floor_towards_known_destinations():
    det = ExfilDetector()
    assert _run(det, [_flow(1, DAY0, 1 * MB)]) == []                # OUT known from hour 0
    assert _run(det, spike(total=150 * MB, start=DAY0 + 2 * H)) == []   # 150 MB < 4 x 50 MB
    assert _run(det, spike(total=600 * MB, start=DAY0 + 4 * H))


def test_first_upload_to_a_new_destination_needs_only_the_floor_while_warming_up():
    det = ExfilDetector()
    alerts = _run(det, spike(total=150 * MB, start=DAY0))
    assert alerts and alerts[0].destination_ip == OUT
    assert "warming up" in alerts[0].message and "floor 50.0 MB" in alerts[0].message


def test_interim_records_are_counted_once():
    det = ExfilDetector(ExfilConfig(floor_bytes=100 * MB, total_floor_bytes=100 * MB))
    _run(det, history())
    interim = [_flow(7, T + 60 + k, (k + 1) * 30 * MB, final=k == 3) for k in range(4)]
    interim[-1] = _flow(7, T + 63, 90 * MB)                        # final repeats the total
    assert _run(det, interim) == []                                # 90 MB, not 270 MB


def test_upload_straddling_the_hour_is_not_cut_in_half():
    det = ExfilDetector()
    _run(det, history())
    halves = [_flow(8, T + H - 600, 35 * MB), _flow(9, T + H + 300, 35 * MB)]
    assert [a.entity for a in _run(det, halves)] == [f"{HOST}|{OUT}"]


def test_repeats_are_raised_only_as_the_volume_doubles():
    det = ExfilDetector(ExfilConfig(refresh_seconds=3600))
    _run(det, history())
    parts = [_flow(10 + i, T + 60 + i * 60, size) for i, size in
             enumerate([60 * MB, 10 * MB, 20 * MB, 40 * MB, 10 * MB])]
    assert [a.message.split(" sent ")[1].split(" to ")[0] for a in _run(det, parts)] == \
        ["60.0 MB", "130.0 MB"]


def test_a_long_upload_keeps_its_alert_current():
    # One connection uploading 1 MB/s for 20 minutes, reported every minute: its interim
    # records are cumulative and all carry the upload's start time.
    det = ExfilDetector()
    _run(det, history())
    start = T + 60
    reports = [_flow(20, start, (k + 1) * 60 * MB, final=k == 19, dur=60.0 * (k + 1))
               for k in range(20)]
    assert_kept_current(_run(det, reports), start + 1200)


def test_an_upload_that_stops_is_stored_with_its_final_volume():
    # 300 MB in six 50 MB flows 10 s apart: raised at 50, 100 and 200 MB, then nothing is due.
    # Another host's small flows move the clock on; a refresh period (60 s) after the last
    # bytes, the final 300 MB is sent once, same alert.
    det = ExfilDetector()
    assert _run(det, history()) == []
    upload = [_flow(1000 + i, T + 60 + 10 * i, 50 * MB, dur=5.0) for i in range(6)]
    clock = [_flow(7000 + k, T + 70 + 10 * k, 1000, src="10.0.0.77", dst="198.51.100.20")
             for k in range(20)]
    alerts = replay(det, sorted(upload + clock, key=lambda f: f["@timestamp"]), 5.0)
    assert [round(a.count) for a in alerts] == [1, 2, 4, 6]           # flows behind each raise
    assert "300.0 MB" in alerts[-1].message and alerts[-1].last_seen == T + 115
    assert len({(a.entity, a.first_seen) for a in alerts}) == 1


def test_state_expires_on_event_time():
    det = ExfilDetector()
    _run(det, history(hours=2))
    assert det.snapshot()["hosts"]
    det.on_timer(DAY0 + 2 * H + det.config.idle_expiry_seconds + 1)
    assert det.snapshot()["hosts"] == {}


def test_snapshot_restore_mid_stream_gives_identical_alerts():
    flows = history() + spike() + spread_exfil()
    whole = _run(ExfilDetector(), flows)
    first = ExfilDetector()
    before = _run(first, flows[:33])
    second = ExfilDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    after = _run(second, flows[33:])
    assert whole and [a.message for a in before + after] == [a.message for a in whole]


@pytest.mark.parametrize("params", [{"floor_bytes": 10}, {"window_seconds": 1}, {"other": 1},
                                    {"floor_bytes": 10 * MB, "total_floor_bytes": MB},
                                    {"ewma_alpha": 0}, {"warmup_floor_factor": 0.5}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        ExfilConfig(**params)


# Shared captures are tiny (KB, minutes): floors lowered and warm-up off, said per test.
SMALL = ExfilConfig(floor_bytes=200_000, total_floor_bytes=400_000, warmup_floor_factor=1)


def _capture_alerts(name, config, networks=NETS):
    path = data_file(name)
    from collectors.capture import iter_flow_documents
    docs = iter_flow_documents([str(path)], observer="t", networks=networks)
    return _run(ExfilDetector(config), docs, timer_every=5.0)


def test_capture_rat_pushes_data_to_its_controller():
    # Both hosts are RFC 1918 in this LAN capture: only the victim is declared internal, so
    # the controller 172.16.0.111 counts as outside; floor 200 KB instead of 50 MB.
    nets = InternalNetworks(["172.16.0.114/32"])
    alerts = _capture_alerts("c2-beacon/cs_ratinfected.pcapng", SMALL, nets)
    assert {(a.source_ip, a.destination_ip) for a in alerts} == {("172.16.0.114",
                                                                 "172.16.0.111")}


def test_capture_rat_with_default_networks_is_internal_traffic():
    assert _capture_alerts("c2-beacon/cs_ratinfected.pcapng", SMALL) == []


def test_capture_agent_tesla_post():
    # One 1.7 KB POST: only a 1 KB floor can see it.
    tiny = ExfilConfig(floor_bytes=1000, total_floor_bytes=1000, warmup_floor_factor=1)
    alerts = _capture_alerts("exfil/zeek_ctu-agent-tesla-http-exfil.pcap", tiny)
    assert [(a.source_ip, a.destination_ip, a.technique_id) for a in alerts] == \
        [("192.168.1.108", "45.9.74.78", "T1041")]


@pytest.mark.parametrize("name", ["benign/cs_http_espn.pcapng", "benign/zeek_http-post-large.pcap",
                                  "benign/zeek_smb2.pcap", "benign/zeek_http-bro.org.pcap",
                                  "c2-beacon/slips_test-cc-capture-1.pcap"])
@pytest.mark.parametrize("config", [ExfilConfig(), SMALL], ids=["default", "small-floors"])
def test_capture_benign_does_not_alert(name, config):
    assert _capture_alerts(name, config) == []

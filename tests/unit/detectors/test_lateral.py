"""Lateral movement detector: new internal admin peers after a learning period."""
from __future__ import annotations

import json

import pytest

from detectors.base import replay
from detectors.lateral import LateralConfig, LateralMovementDetector
from watchkeeper.documents import FlowRecord, alert_document, flow_document
from watchkeeper.networks import InternalNetworks
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current

NETS = InternalNetworks()
DAY = 86_400.0
T0 = 1_700_000_000.0
AFTER = T0 + 8 * DAY            # past the default 7-day learning period


def _flow(i, t, src, dst, port, state="SF", resp_pkts=8):
    record = FlowRecord(uid=f"C{i}", start=t, end=t + 30, proto=6, orig_ip=src,
                        orig_port=50000 + i % 10000, resp_ip=dst, resp_port=port,
                        orig_pkts=10, resp_pkts=resp_pkts, orig_bytes=2000,
                        resp_bytes=3000, conn_state=state)
    return flow_document(record, "s", NETS)


def _run(det, flows, timer_every=60.0):
    return replay(det, flows, timer_every)


def learning():
    """A week of normal life: the jump host administers 12 servers, users browse."""
    flows = [_flow(i, T0 + i * 3600, "10.0.0.10", f"10.0.2.{i % 12}", 22) for i in range(150)]
    flows += [_flow(500 + i, T0 + i * 3600 + 5, "10.0.0.20", "10.0.3.1", 445)
              for i in range(150)]                               # file server mapping
    return sorted(flows, key=lambda f: f["@timestamp"])


def spread(src="10.0.0.66", n=5, port=445, gap=60.0, state="SF", start=AFTER, base=1000):
    return [_flow(base + i, start + i * gap, src, f"10.0.4.{i}", port, state)
            for i in range(n)]


def jump_host_rounds():
    return [_flow(2000 + i, AFTER + i * 30, "10.0.0.10", f"10.0.2.{i % 12}", 22)
            for i in range(36)]


def patch_server_https():
    """WSUS/monitoring talking to 50 hosts on a non-admin port."""
    return [_flow(3000 + i, AFTER + i, "10.0.0.30", f"10.0.5.{i}", 443) for i in range(50)]


def external_admin():
    return [_flow(4000 + i, AFTER + i, "10.0.0.40", f"198.51.100.{i}", 22) for i in range(10)]


@pytest.mark.parametrize("flows, actor, severity", [
    (spread(), "10.0.0.66", 3),                              # SMB to 5 new hosts
    (spread(port=22, n=4), "10.0.0.66", 2),                  # SSH, at the threshold
    (spread(src="10.0.0.10", port=3389), "10.0.0.10", 3),    # jump host doing something new
    (jump_host_rounds(), None, None),                        # learned: quiet
    (spread(n=3), None, None),                               # below min_new_hosts
    (spread(gap=600.0), None, None),                         # slower than the 15-min window
    (spread(state="REJ"), None, None),                       # refused: scan's business
    (spread(state="S0"), None, None),                        # unanswered
    (patch_server_https(), None, None),                      # not an admin port
    (external_admin(), None, None),                          # outbound, not lateral
])
def test_shapes(flows, actor, severity):
    det = LateralMovementDetector()
    assert _run(det, learning()) == []
    alerts = _run(det, flows)
    if actor is None:
        assert alerts == []
        return
    last = alerts[-1]
    assert last.entity == actor == last.source_ip and last.severity == severity
    assert last.technique_id == "T1021"
    assert set(last.subscores) == {"new_admin_peers", "breadth"}
    assert all(0 <= v <= 1 for v in last.subscores.values())
    assert len(last.related_ips) == last.count and len(last.evidence) == last.count


def test_known_hosts_lower_the_new_peer_share():
    det = LateralMovementDetector()
    _run(det, learning())
    mixed = jump_host_rounds()[:12] + spread(src="10.0.0.10", port=5985, start=AFTER + 400)
    last = _run(det, mixed)[-1]
    assert last.subscores["new_admin_peers"] < 0.5       # 5 new among 12 familiar servers


def test_repeats_are_raised_only_as_new_peers_double():
    det = LateralMovementDetector(LateralConfig(refresh_seconds=3600))
    _run(det, learning())
    alerts = _run(det, spread(n=20, gap=10.0))
    assert [a.count for a in alerts] == [4, 8, 16]


def test_a_slow_spread_keeps_its_alert_current():
    # A worm reaching a new host every 30 s for 10 minutes: doubling alone last raised at the
    # 16th host, two minutes before the end.
    det = LateralMovementDetector()
    _run(det, learning())
    assert_kept_current(_run(det, spread(n=20, gap=30.0)), AFTER + 19 * 30.0)


def test_a_spread_longer_than_the_window_keeps_one_alert():
    # A new host a minute for 100 minutes: the 15-minute window's oldest host moves on, but
    # the alert keeps the episode's first-seen time, so its id (hour of first-seen) holds.
    det = LateralMovementDetector()
    _run(det, learning())
    alerts = _run(det, spread(n=100, gap=60.0))
    assert {alert_document(a, created=0.0)["event"]["id"] for a in alerts} == {
        alert_document(alerts[0], created=0.0)["event"]["id"]}
    assert alerts[-1].first_seen == AFTER
    assert_kept_current(alerts, AFTER + 99 * 60.0, most=60.0)


def test_each_new_pair_alerts_once():
    det = LateralMovementDetector()
    _run(det, learning())
    assert _run(det, spread())
    assert _run(det, spread(start=AFTER + 3600, base=9000)) == []   # now known


def test_known_pairs_are_forgotten_and_bounded():
    det = LateralMovementDetector(LateralConfig(max_known_per_source=16))
    _run(det, learning())
    late = AFTER + det.config.forget_after_seconds
    det.on_timer(late)
    assert "10.0.0.10" not in det.snapshot()["sources"]      # idle for 30 days: forgotten
    assert _run(det, jump_host_rounds_at(late + 60))          # so its old routine is new again
    det2 = LateralMovementDetector(LateralConfig(max_known_per_source=16, learning_seconds=0))
    _run(det2, spread(n=20, gap=1.0, start=T0))
    assert len(det2.snapshot()["sources"]["10.0.0.66"]["known"]) == 16


def jump_host_rounds_at(start):
    return [_flow(6000 + i, start + i * 30, "10.0.0.10", f"10.0.2.{i % 12}", 22)
            for i in range(12)]


def test_window_expires_on_event_time():
    det = LateralMovementDetector(LateralConfig(learning_seconds=0))
    _run(det, spread(n=3, start=T0))
    assert det.snapshot()["sources"]["10.0.0.66"]["recent"]
    det.on_timer(T0 + 3 * 60 + det.config.window_seconds + 1)
    assert det.snapshot()["sources"]["10.0.0.66"]["recent"] == []


def test_snapshot_restore_mid_stream_gives_identical_alerts():
    flows = learning() + spread(n=20, gap=10.0)
    whole = _run(LateralMovementDetector(), flows)
    first = LateralMovementDetector()
    cut = len(flows) - 12
    before = _run(first, flows[:cut])
    second = LateralMovementDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    after = _run(second, flows[cut:])
    assert whole and [a.count for a in before + after] == [a.count for a in whole]


@pytest.mark.parametrize("params", [{"min_new_hosts": 1}, {"window_seconds": 0},
                                    {"admin_ports": []}, {"admin_ports": [0]},
                                    {"max_known_per_source": 1}, {"bogus": True}])
def test_config_bounds(params):
    with pytest.raises(ValueError):
        LateralConfig(**params)


@pytest.mark.parametrize("name", ["benign/zeek_ssh.pcap", "benign/zeek_smb2.pcap",
                                  "benign/zeek_smb3.pcap",
                                  "benign/zeek_var-services-std-ports.pcap",
                                  "bruteforce/zeek_ssh-sshguess.pcap",
                                  "scan/cs_activeosfingerprinting.pcapng"])
def test_capture_benign_admin_sessions_do_not_alert(name):
    # No labelled lateral-movement capture exists in tests/data; these hold the
    # internal SSH/SMB/RPC sessions there are. With learning off and a threshold of 2 hosts
    # they must still stay quiet (each admin client reaches a single server).
    path = data_file(name)
    from collectors.capture import iter_flow_documents
    det = LateralMovementDetector(LateralConfig(learning_seconds=0, min_new_hosts=2))
    docs = iter_flow_documents([str(path)], observer="t", networks=NETS)
    assert _run(det, docs, timer_every=5.0) == []


# --- day one: asset roles (detectors/roles.py) -----------------------------------------------

def first_two_minutes():
    """A fresh monitor's first two minutes: users browse the intranet, servers answer."""
    flows = [_flow(7000 + i, T0 + i * 2, f"10.0.0.{20 + i % 5}", "10.0.3.80", 443)
             for i in range(60)]
    flows += [_flow(7100 + i, T0 + 1 + i * 10, "10.0.0.21", "10.0.3.1", 445) for i in range(12)]
    return flows


def workstation_goes_admin(src="10.0.0.77", ports=(445, 3389, 5985), start=T0 + 125):
    """Issue 14's case: a workstation starts SMB, RDP and WinRM on two servers."""
    targets = [(h, p) for h in ("10.0.3.1", "10.0.3.2") for p in ports]
    return [_flow(7200 + i, start + i * 3, src, h, p) for i, (h, p) in enumerate(targets)]


@pytest.mark.parametrize("flows, actor", [
    (workstation_goes_admin(), "10.0.0.77"),
    (workstation_goes_admin(ports=(22,)), "10.0.0.77"),              # ssh into two servers
    (workstation_goes_admin(ports=(445,)), None),                     # two file shares
    (workstation_goes_admin(src="10.0.3.80"), None),                  # a server (it answers)
    ([_flow(7300 + i, T0 + 125 + i * 15, "10.0.0.22", "10.0.3.11", 22)   # one server, daily
      for i in range(10)], None),
])
def test_a_fresh_monitor_is_not_blind(flows, actor):
    det = LateralMovementDetector()                  # default: a week of learning ahead
    assert _run(det, first_two_minutes()) == []
    alerts = _run(det, flows)
    assert {a.source_ip for a in alerts} == ({actor} if actor else set())
    if actor:
        assert "not fitting its role" in alerts[0].message and alerts[0].severity >= 2


def test_inventory_roles_override_what_is_learned():
    servers = LateralConfig(server_networks=["10.0.0.77/32"])
    det = LateralMovementDetector(servers)
    _run(det, first_two_minutes())
    assert _run(det, workstation_goes_admin()) == []     # a declared jump host
    workstations = LateralConfig(workstation_networks=["10.0.3.0/24"])
    det = LateralMovementDetector(workstations)
    _run(det, first_two_minutes())
    assert _run(det, workstation_goes_admin(src="10.0.3.80"))   # answers, but a workstation


def test_learned_servers_survive_a_restart():
    det = LateralMovementDetector()
    _run(det, first_two_minutes())
    again = LateralMovementDetector()
    again.restore(json.loads(json.dumps(det.snapshot())))
    assert again.roles.role("10.0.3.80") == "server" and again.roles.role("10.0.0.77") == \
        "workstation"


def test_learned_servers_are_forgotten_like_known_pairs():
    det = LateralMovementDetector()
    _run(det, first_two_minutes())
    det.on_timer(T0 + det.config.forget_after_seconds + 2 * 3600)
    assert det.snapshot()["servers"] == {}


def test_a_fast_spread_that_stops_is_stored_with_its_final_count():
    # SMB to ten new hosts in ten seconds: raised as the count doubles, then the learned jump
    # host's rounds move the clock on; a refresh period later the final count is sent once.
    det = LateralMovementDetector()
    assert _run(det, learning()) == []
    stream = sorted(spread(n=10, gap=1.0) + jump_host_rounds(), key=lambda f: f["@timestamp"])
    alerts = _run(det, stream)
    assert [a.count for a in alerts][-2:] == [8, 10]
    assert len({a.first_seen for a in alerts}) == 1 and alerts[-1].last_seen == AFTER + 9

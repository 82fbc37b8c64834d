"""Flow-table state machine on hand-built packet sequences (scapy writes a temp pcap)."""
from __future__ import annotations

import pytest
from scapy.all import ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, IPv6, Raw, fragment

from collectors.capture import iter_flows
from collectors.capture.flows.reference import FlowConfig

from .packets import ETHER, write_pcap
from .packets import either_engine  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("either_engine")

A, B = "10.0.0.1", "192.0.2.9"


def run(tmp_path, packets, config=None, name="t.pcap", final_only=True):
    """packets: list of (time, scapy packet without Ether) -> (final records, stats)."""
    flows = iter_flows([str(write_pcap(tmp_path, packets, name))], config)
    records = [r for r in flows if r.final or not final_only]
    return records, flows.stats


def tcp(src, dst, sport, dport, flags, seq=1000, ack=0, data=b""):
    pkt = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    return pkt / Raw(data) if data else pkt


def handshake_and_close():
    return [
        (1.0, tcp(A, B, 40000, 80, "S", seq=100)),
        (1.1, tcp(B, A, 80, 40000, "SA", seq=500, ack=101)),
        (1.2, tcp(A, B, 40000, 80, "A", seq=101, ack=501)),
        (1.3, tcp(A, B, 40000, 80, "PA", seq=101, ack=501, data=b"GET / HTTP/1.0\r\n\r\n")),
        (1.4, tcp(B, A, 80, 40000, "PA", seq=501, ack=119, data=b"x" * 100)),
        (1.5, tcp(A, B, 40000, 80, "FA", seq=119, ack=601)),
        (1.6, tcp(B, A, 80, 40000, "FA", seq=601, ack=120)),
        (1.7, tcp(A, B, 40000, 80, "A", seq=120, ack=602)),
    ]


def test_complete_connection_is_sf(tmp_path):
    (rec,), _ = run(tmp_path, handshake_and_close())
    assert (rec.orig_ip, rec.orig_port, rec.resp_ip, rec.resp_port) == (A, 40000, B, 80)
    assert rec.conn_state == "SF"
    assert rec.history == "ShADdFf"   # the responder never sent a pure ACK
    assert (rec.orig_pkts, rec.resp_pkts) == (5, 3)
    assert (rec.orig_bytes, rec.resp_bytes) == (18, 100)
    assert rec.orig_ip_bytes == 4 * 40 + 58 and rec.resp_ip_bytes == 2 * 40 + 140
    assert rec.service == "http" and rec.uid.startswith("C") and rec.final


def test_uid_is_deterministic(tmp_path):
    (a,), _ = run(tmp_path, handshake_and_close(), name="a.pcap")
    (b,), _ = run(tmp_path, handshake_and_close(), name="b.pcap")
    assert a.uid == b.uid


@pytest.mark.parametrize("reply, state, history", [
    (None, "S0", "S"),
    ("RA", "REJ", "Sr"),
    ("SA", "S1", "Sh"),
])
def test_connection_attempts(tmp_path, reply, state, history):
    pkts = [(1.0, tcp(A, B, 40001, 22, "S", seq=7))]
    if reply:
        pkts.append((1.1, tcp(B, A, 22, 40001, reply, seq=0 if reply == "RA" else 900, ack=8)))
    if reply == "SA":
        pkts.append((1.2, tcp(A, B, 40001, 22, "A", seq=8, ack=901)))
        history = "ShA"
    (rec,), _ = run(tmp_path, pkts)
    assert (rec.conn_state, rec.history) == (state, history)


def test_syn_ack_first_flips_roles(tmp_path):
    pkts = [(1.0, tcp(B, A, 1433, 2745, "SA", seq=5, ack=10)),
            (1.1, tcp(B, A, 1433, 2745, "A", seq=6, ack=10)),
            (1.2, tcp(B, A, 1433, 2745, "FA", seq=6, ack=10))]
    (rec,), _ = run(tmp_path, pkts)
    assert (rec.orig_ip, rec.orig_port, rec.resp_port) == (A, 2745, 1433)
    assert rec.history == "^haf"
    assert (rec.orig_pkts, rec.resp_pkts, rec.resp_ip_bytes) == (0, 3, 120)


def test_rst_from_originator_after_established(tmp_path):
    pkts = handshake_and_close()[:4] + [(2.0, tcp(A, B, 40000, 80, "R", seq=119))]
    (rec,), _ = run(tmp_path, pkts)
    assert rec.conn_state == "RSTO" and rec.history.endswith("R")


def test_unanswered_syn_retry_after_attempt_delay_is_new_connection(tmp_path):
    pkts = [(1.0, tcp(A, B, 40002, 23, "S", seq=1)), (2.0, tcp(A, B, 40002, 23, "S", seq=1)),
            (8.0, tcp(A, B, 40002, 23, "S", seq=1))]
    recs, _ = run(tmp_path, pkts)
    assert [(r.orig_pkts, r.conn_state) for r in recs] == [(2, "S0"), (1, "S0")]


def test_udp_request_reply_and_inactivity_split(tmp_path):
    q = IP(src=A, dst=B) / UDP(sport=5000, dport=9999) / Raw(b"q" * 10)
    r = IP(src=B, dst=A) / UDP(sport=9999, dport=5000) / Raw(b"r" * 30)
    recs, _ = run(tmp_path, [(1.0, q), (1.1, r), (100.0, q)])
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts) for r in recs] == [
        ("SF", "Dd", 1, 1), ("S0", "D", 1, 0)]
    assert (recs[0].orig_bytes, recs[0].resp_bytes) == (10, 30)


def test_udp_reply_from_server_port_is_flipped(tmp_path):
    reply = IP(src=B, dst=A) / UDP(sport=53, dport=33333) / Raw(b"x" * 20)
    (rec,), _ = run(tmp_path, [(1.0, reply)])
    assert (rec.orig_ip, rec.resp_port, rec.conn_state, rec.history) == (A, 53, "SHR", "^d")


def test_icmp_echo_pairs_request_and_reply(tmp_path):
    pkts = [(1.0, IP(src=A, dst=B) / ICMP(type=8, id=1) / Raw(b"abcd")),
            (1.1, IP(src=B, dst=A) / ICMP(type=0, id=1) / Raw(b"abcd"))]
    (rec,), _ = run(tmp_path, pkts)
    assert (rec.proto, rec.orig_port, rec.resp_port) == (1, 8, 0)
    assert (rec.orig_pkts, rec.resp_pkts, rec.orig_bytes) == (1, 1, 4)


def test_vlan_qinq_and_ipv6_are_decoded(tmp_path):
    pkts = [(1.0, ETHER / Dot1Q(vlan=10) / IP(src=A, dst=B) / UDP(sport=1, dport=2)),
            (1.1, ETHER / Dot1AD(vlan=5) / Dot1Q(vlan=6) / IP(src=B, dst=A) / UDP(sport=2,
                                                                                dport=1)),
            (1.2, IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=5, dport=6,
                                                                 flags="S"))]
    recs, _ = run(tmp_path, pkts)
    assert sorted((r.proto, r.orig_pkts, r.resp_pkts) for r in recs) == [(6, 1, 0), (17, 1, 1)]
    assert any(r.orig_ip == "2001:db8::1" for r in recs)


def test_fragments_are_reassembled_and_counted(tmp_path):
    big = IP(src=A, dst=B, id=7) / UDP(sport=4000, dport=4001) / Raw(b"z" * 3000)
    frags = fragment(big, fragsize=1000)
    (rec,), stats = run(tmp_path, [(1.0 + i / 100, f) for i, f in enumerate(frags)])
    assert stats.fragments == len(frags) and rec.orig_pkts == 1
    assert rec.orig_ip_bytes == 20 + 8 + 3000


def test_interim_records_for_long_flows(tmp_path):
    q = IP(src=A, dst=B) / UDP(sport=6000, dport=6001)
    pkts = [(float(t), q) for t in range(0, 700, 30)]
    recs, stats = run(tmp_path, pkts, FlowConfig(active_timeout=300, early_report=0),
                      final_only=False)
    interim = [r for r in recs if not r.final]
    final = [r for r in recs if r.final]
    assert len(final) == 1 and len(interim) == 2 == stats.interim_records
    assert all(r.uid == final[0].uid for r in interim)
    assert final[0].orig_pkts == len(pkts)


def test_table_is_bounded_and_evictions_counted(tmp_path):
    pkts = [(1.0 + i, IP(src=A, dst=B) / UDP(sport=7000 + i, dport=53)) for i in range(5)]
    recs, stats = run(tmp_path, pkts, FlowConfig(max_flows=2))
    assert len(recs) == 5 and stats.evicted_flows == 3
    assert sum(1 for r in recs if r.extra.get("evicted")) == 3


def test_large_table_bound_still_drains_its_records(tmp_path):
    # An eviction round of max_flows / 64 flows must always fit the record buffer.
    pkts = [(1.0 + i, IP(src=A, dst=B) / UDP(sport=7000 + i, dport=53)) for i in range(5)]
    recs, stats = run(tmp_path, pkts, FlowConfig(max_flows=8_000_000))
    assert len(recs) == 5 and stats.evicted_flows == 0


def test_lite_flow_materialises_when_a_later_batch_continues_it(tmp_path):
    """One packet per batch: lone SYN / UDP start as lite rows, later packets replay them."""
    from collectors.capture import Capture, CaptureStats, file_batches
    q = IP(src=A, dst=B) / UDP(sport=5000, dport=9999) / Raw(b"q" * 10)
    r = IP(src=B, dst=A) / UDP(sport=9999, dport=5000) / Raw(b"r" * 30)
    pkts = [(1.0, tcp(A, B, 40001, 22, "S", seq=7)), (1.0, q),
            (1.1, tcp(B, A, 22, 40001, "SA", seq=900, ack=8)), (1.1, r),
            (1.2, tcp(A, B, 40001, 22, "A", seq=8, ack=901))]
    whole, _ = run(tmp_path, pkts, name="whole.pcap")
    stats = CaptureStats()
    split = list(Capture(file_batches([str(tmp_path / "whole.pcap")], stats, chunk_size=64),
                         stats=stats))
    key = sorted((r.uid, r.conn_state, r.history, r.orig_pkts, r.resp_pkts, r.orig_bytes)
                 for r in whole)
    assert key == sorted((r.uid, r.conn_state, r.history, r.orig_pkts, r.resp_pkts,
                          r.orig_bytes) for r in split)
    assert sorted((r.conn_state, r.history) for r in split) == [("S1", "ShA"), ("SF", "Dd")]

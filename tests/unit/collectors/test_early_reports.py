"""Flows are visible while they run: early reports, interim records, a quiet link's clock."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP, UDP

from collectors.capture import Capture
from collectors.capture.flows.reference import FlowConfig

from .packets import batches
from .packets import quiet as _empty
from .packets import either_engine  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("either_engine")

A, B = "10.0.0.1", "192.0.2.9"


def test_one_way_udp_flood_is_reported_after_early_delay_not_inactivity(tmp_path):
    # hping3 --udp --flood: every datagram a new source port, nothing answers.
    pkts = [(100.0 + i / 100, IP(src=A, dst=B) / UDP(sport=2000 + i, dport=9)) for i in range(50)]
    source = batches(tmp_path, pkts) + [_empty(clock=106.0)]
    capture = Capture(iter(source), FlowConfig())
    early = []
    for rec in capture:
        early.append(rec)
        if len(early) == 50:
            break
    assert all(not r.final and r.conn_state == "S0" and r.orig_pkts == 1 for r in early)
    assert {r.orig_port for r in early} == set(range(2000, 2050))
    rest = list(capture)                       # end of input: the final records follow
    assert len([r for r in rest if r.final]) == 50
    assert {r.uid for r in rest} == {r.uid for r in early}


def test_dns_queries_are_not_reported_early(tmp_path):
    # Their end (DNS session timeout, 10 s) is close anyway: one record each.
    pkts = [(100.0 + i, IP(src=A, dst=B) / UDP(sport=3000 + i, dport=53)) for i in range(5)]
    recs = list(Capture(iter(batches(tmp_path, pkts) + [_empty(clock=200.0)])))
    assert len(recs) == 5 and all(r.final for r in recs)


def test_silent_open_connection_gets_timer_driven_reports(tmp_path):
    # slowloris-like: handshake, a few bytes, then silence while the connection stays open.
    pkts = [(10.0, IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="S", seq=1)),
            (10.1, IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2)),
            (10.2, IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="A", seq=2, ack=10)),
            (10.3, IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="PA", seq=2, ack=10)
             / b"GET / HTTP/1.1\r\n")]
    source = batches(tmp_path, pkts) + [_empty(clock=t) for t in (12.0, 15.5, 40.0, 75.5)]
    recs = list(Capture(iter(source), FlowConfig()))
    interim = [r for r in recs if not r.final]
    assert [r.conn_state for r in interim] == ["S1", "S1"]          # at 15 s, then 75 s
    assert interim[0].orig_bytes == len(b"GET / HTTP/1.1\r\n")
    assert recs[-1].final and recs[-1].uid == interim[0].uid        # flushed at the end


def test_a_late_sweep_does_not_report_the_same_record_twice(tmp_path):
    # A quiet link swept late (at 70 s for the report due at 15 s), then 6 s later: the next
    # report is due a minute after the one sent (130 s), not after the one that was due (75 s).
    pkts = [(10.0, IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="S", seq=1)),
            (10.1, IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2)),
            (10.2, IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="A", seq=2, ack=10))]
    quiet = [_empty(clock=t) for t in (70.0, 76.0, 129.0)]
    recs = list(Capture(iter(batches(tmp_path, pkts) + quiet), FlowConfig()))
    assert [r.final for r in recs] == [False, True]                   # at 70 s, then the end
    quiet.append(_empty(clock=131.0))
    recs = list(Capture(iter(batches(tmp_path, pkts) + quiet), FlowConfig()))
    assert [r.final for r in recs] == [False, False, True]            # 70 s, 131 s, the end


def test_a_lone_syn_ack_is_reported_early_once(tmp_path):
    # Backscatter: a SYN-ACK nobody asked for stays until TCP inactivity (5 min); one early
    # report says it exists, a repeat each minute would say nothing new.
    pkts = [(10.0, IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="SA", seq=9, ack=2))]
    source = batches(tmp_path, pkts) + [_empty(clock=t) for t in (16.0, 80.0, 140.0, 200.0)]
    recs = list(Capture(iter(source), FlowConfig()))
    assert [r.final for r in recs] == [False, True]
    assert recs[0].conn_state == "OTH" and recs[0].resp_pkts == 1


def test_quiet_link_expires_flows_on_the_clock(tmp_path):
    pkts = [(50.0, IP(src=A, dst=B) / TCP(sport=40001, dport=22, flags="S", seq=1))]
    def source():
        yield from batches(tmp_path, pkts)
        yield _empty(clock=56.0)
        raise AssertionError("the capture read past the quiet batch")
    capture = Capture(source(), FlowConfig())
    rec = next(capture)                  # ended by the attempt timer at 55 s, before more input
    assert rec.final and rec.conn_state == "S0"


def test_early_report_can_be_disabled(tmp_path):
    pkts = [(100.0, IP(src=A, dst=B) / UDP(sport=2000, dport=9))]
    recs = list(Capture(iter(batches(tmp_path, pkts) + [_empty(clock=130.0)]),
                        FlowConfig(early_report=0)))
    assert [r.final for r in recs] == [True]


def test_refused_probe_is_reported_at_the_reset(tmp_path):
    # nmap -sS against a closed port: SYN, RST-ACK. Zeek keeps the flow 5 s for late packets;
    # the outcome (REJ) is known at the reset, so it is reported then, and finally later.
    pkts = [(10.0, IP(src=A, dst=B) / TCP(sport=40002, dport=23, flags="S", seq=1)),
            (10.001, IP(src=B, dst=A) / TCP(sport=23, dport=40002, flags="RA", seq=0, ack=2))]
    source = batches(tmp_path, pkts) + [_empty(clock=10.5)]
    capture = Capture(iter(source), FlowConfig())
    first = next(capture)
    assert not first.final and first.conn_state == "REJ"
    rest = list(capture)
    assert [r.final for r in rest] == [True] and rest[0].conn_state == "REJ"


def test_a_connection_already_closed_is_not_reported_early(tmp_path):
    # A short request/response closed by both sides: Zeek keeps it 5 s for late packets, so it
    # is still in the table when its early-report time comes. It is over, so it is reported
    # once, finally, whatever the batch boundaries (the clock batch falls in between).
    pkts = [(10.0, IP(src=A, dst=B) / TCP(sport=40003, dport=80, flags="S", seq=1)),
            (10.01, IP(src=B, dst=A) / TCP(sport=80, dport=40003, flags="SA", seq=9, ack=2)),
            (10.02, IP(src=A, dst=B) / TCP(sport=40003, dport=80, flags="PA", seq=2, ack=10)
             / b"GET / HTTP/1.1\r\n\r\n"),
            (10.03, IP(src=B, dst=A) / TCP(sport=80, dport=40003, flags="PA", seq=10, ack=21)
             / b"HTTP/1.1 200 OK\r\n\r\n"),
            (10.04, IP(src=A, dst=B) / TCP(sport=40003, dport=80, flags="FA", seq=21, ack=29)),
            (10.05, IP(src=B, dst=A) / TCP(sport=80, dport=40003, flags="FA", seq=29, ack=22)),
            (10.06, IP(src=A, dst=B) / TCP(sport=40003, dport=80, flags="A", seq=22, ack=30))]
    source = batches(tmp_path, pkts) + [_empty(clock=15.03), _empty(clock=40.0)]
    recs = list(Capture(iter(source), FlowConfig()))
    assert [(r.final, r.conn_state) for r in recs] == [(True, "SF")]


def test_a_connection_open_at_its_early_report_time_is_still_reported(tmp_path):
    # The same exchange, closed only after the early-report time: seen while it ran.
    pkts = [(10.0, IP(src=A, dst=B) / TCP(sport=40004, dport=80, flags="S", seq=1)),
            (10.01, IP(src=B, dst=A) / TCP(sport=80, dport=40004, flags="SA", seq=9, ack=2)),
            (10.02, IP(src=A, dst=B) / TCP(sport=40004, dport=80, flags="A", seq=2, ack=10)),
            (16.0, IP(src=A, dst=B) / TCP(sport=40004, dport=80, flags="FA", seq=2, ack=10)),
            (16.01, IP(src=B, dst=A) / TCP(sport=80, dport=40004, flags="FA", seq=10, ack=3))]
    source = batches(tmp_path, pkts[:3], "a.pcap") + [_empty(clock=15.03)] + \
        batches(tmp_path, pkts[3:], "b.pcap") + [_empty(clock=40.0)]
    recs = list(Capture(iter(source), FlowConfig()))
    assert [(r.final, r.conn_state) for r in recs] == [(False, "S1"), (True, "SF")]

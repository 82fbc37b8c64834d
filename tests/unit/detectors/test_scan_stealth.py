"""FIN, Xmas, NULL, SYN+FIN and ACK scans (`nmap -sF/-sX/-sN/-sA`): from hand-built frames
through the capture to the scan detector. A closed port's RST made such a probe an *accepted*
first contact (Zeek's RSTR), so these scans once walked TRW towards "benign"."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP

from collectors.capture import iter_flow_documents
from detectors.fingerprint import stealth_probe
from detectors.scan import ScanDetector
from tests.unit.collectors.packets import write_pcap
from watchkeeper import schema, timeutil
from watchkeeper.networks import InternalNetworks

SCANNER, TARGET = "10.0.0.5", "10.0.0.9"
OPEN = {22, 80, 443}


def probes(flags, ports=range(1, 101), answer_closed="RA"):
    """One probe per port, 10 ms apart; closed ports answer RST+ACK, open ones stay silent."""
    frames, t = [], 1000.0
    for i, port in enumerate(ports):
        frames.append((t, IP(src=SCANNER, dst=TARGET) / TCP(sport=50000 + i % 7, dport=port,
                                                            flags=flags)))
        if port not in OPEN and answer_closed:
            frames.append((t + 0.001, IP(src=TARGET, dst=SCANNER) / TCP(
                sport=port, dport=50000 + i % 7, flags=answer_closed)))
        t += 0.01
    return frames


def closes_of_joined_connections(n=60):
    """The sensor started midstream: client FIN+ACKs of n connections, answered FIN+ACK."""
    frames, t = [], 1000.0
    for i in range(n):
        frames.append((t, IP(src=SCANNER, dst=f"10.0.1.{i + 1}") / TCP(
            sport=40000 + i, dport=443, flags="FA", seq=100, ack=200)))
        frames.append((t + 0.001, IP(src=f"10.0.1.{i + 1}", dst=SCANNER) / TCP(
            sport=443, dport=40000 + i, flags="FA", seq=200, ack=101)))
        t += 0.5
    return frames


def stale_keepalives(n=30):
    """A client's finished sessions with n servers, then, a minute on, one bare ACK to each,
    refused (the servers restarted): straggling ACKs of connections it had, not probes."""
    frames, t = [], 1000.0
    for i in range(n):
        server, sport = f"10.0.2.{i + 1}", 40000 + i
        out = IP(src=SCANNER, dst=server) / TCP(sport=sport, dport=443, seq=100, ack=200)
        back = IP(src=server, dst=SCANNER) / TCP(sport=443, dport=sport, seq=200, ack=101)
        for dt, frame, flags in ((0, out, "S"), (0.001, back, "SA"), (0.002, out, "A"),
                                 (0.003, out, "PA"), (0.004, back, "A"), (0.005, out, "FA"),
                                 (0.006, back, "FA"), (0.007, out, "A"),
                                 (60, out, "A"), (60.001, back, "R")):
            pkt = frame.copy()
            pkt[TCP].flags = flags
            frames.append((t + dt, pkt / (b"x" * 20) if flags == "PA" else pkt))
        t += 0.05
    return sorted(frames, key=lambda f: f[0])


def alerts_of(tmp_path, frames):
    path = write_pcap(tmp_path, frames)
    docs = sorted((d for d in iter_flow_documents([str(path)], "s", InternalNetworks())
                   if d["event"]["dataset"] == schema.FLOW), key=lambda d: d["@timestamp"])
    det, alerts = ScanDetector(), []
    for doc in docs:
        alerts += det.on_event(doc, timeutil.parse(doc["@timestamp"]))
    return alerts


@pytest.mark.parametrize("flags", ["F", "FPU", "", "SF"])    # FIN, Xmas, NULL, SYN+FIN
def test_stealth_scans_are_named(tmp_path, flags):
    alerts = alerts_of(tmp_path, probes(flags))
    assert alerts and {a.entity for a in alerts} == {SCANNER}
    assert alerts[-1].destination_ip == TARGET and alerts[-1].count >= 15


def test_an_ack_scan_is_named(tmp_path):
    # `nmap -sA`: unfiltered ports, open or closed, answer a bare ACK with RST; filtered ones
    # (here the three "open" ports) stay silent and count for nothing.
    alerts = alerts_of(tmp_path, probes("A", answer_closed="R"))
    assert alerts and {a.entity for a in alerts} == {SCANNER}
    assert alerts[-1].destination_ip == TARGET and alerts[-1].count >= 15


def test_unanswered_or_stale_acks_are_not_probes(tmp_path):
    assert alerts_of(tmp_path, probes("A", answer_closed=None)) == []
    assert alerts_of(tmp_path, stale_keepalives()) == []


def test_a_stealth_scan_of_open_ports_only_is_named(tmp_path):
    assert alerts_of(tmp_path, probes("FPU", answer_closed=None))


def test_closes_of_connections_joined_midstream_are_not_probes(tmp_path):
    assert alerts_of(tmp_path, closes_of_joined_connections()) == []


@pytest.mark.parametrize("history, packets, probe", [
    ("Fr", 1, True), ("F", 1, True), ("FTr", 2, True), ("Qr", 1, True), ("r", 1, True),
    ("", 1, True), ("", 0, False),
    ("Ff", 1, False),           # answered with a FIN: a close
    ("Fa", 1, False), ("FAr", 2, False),
    ("Ar", 1, True), ("A", 1, False), ("Aa", 1, False), ("ADr", 2, False),    # ACK probes
    ("ShAFf", 3, False), ("Sr", 1, False), ("DFr", 2, False), ("^Fr", 1, False),
])
def test_which_histories_are_probes(history, packets, probe):
    assert stealth_probe({"history": history, "orig_bytes": 0}, packets) is probe


def test_a_probe_with_payload_is_not_stealth():
    assert not stealth_probe({"history": "Fr", "orig_bytes": 10}, 1)
    assert not stealth_probe({}, 1)

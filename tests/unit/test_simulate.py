"""The scenario pcap: readable, counts as described, deterministic, in time order."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from scapy.layers.dns import DNS
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import rdpcap

from watchkeeper.simulate import DEFAULT_START, ScenarioSummary, write_scenario

START = 1_800_000_000.25


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[ScenarioSummary, list]:
    path = tmp_path_factory.mktemp("scenario") / "default.pcap"
    summary = write_scenario(str(path), start=START)
    return summary, rdpcap(str(path))


def _syn_ports_by_source(packets) -> dict[str, set[int]]:
    ports: dict[str, set[int]] = defaultdict(set)
    for packet in packets:
        if TCP in packet and packet[TCP].flags == "S":
            ports[packet[IP].src].add(packet[TCP].dport)
    return ports


def test_file_is_readable_and_summary_matches(scenario):
    summary, packets = scenario
    assert len(packets) == summary.packets
    assert 1000 <= summary.packets <= 5000  # modest by default
    assert float(packets[0].time) == pytest.approx(summary.start) == pytest.approx(START)
    assert float(packets[-1].time) == pytest.approx(summary.end)
    assert 60 <= summary.end - summary.start <= 600  # a few minutes


def test_scanner_probes_exactly_the_requested_ports(scenario):
    summary, packets = scenario
    assert summary.scanned_ports == 200
    assert len(_syn_ports_by_source(packets)[summary.scanner]) == 200
    probes = [p for p in packets if p[IP].src == summary.scanner and TCP in p
              and p[TCP].flags == "S"]
    assert {p[IP].dst for p in probes} == {summary.scan_target}
    assert 8 <= float(probes[-1].time - probes[0].time) <= 20
    assert len({p[TCP].sport for p in probes}) > 100  # fresh source ports


def test_scan_is_half_open(scenario):
    summary, packets = scenario
    from_target = [p for p in packets if TCP in p and p[IP].src == summary.scan_target]
    assert {p[TCP].sport for p in from_target if p[TCP].flags == "SA"} == {22, 80, 443}
    assert sum(p[TCP].flags == "RA" for p in from_target) == 197
    resets = [p for p in packets if TCP in p and p[IP].src == summary.scanner
              and p[TCP].flags == "R"]
    assert sorted(p[TCP].dport for p in resets) == [22, 80, 443]


def test_benign_hosts_only_touch_a_handful_of_ports(scenario):
    summary, packets = scenario
    assert summary.scanner not in summary.benign_hosts
    assert summary.scan_target not in summary.benign_hosts
    by_source = _syn_ports_by_source(packets)
    assert any(by_source[host] for host in summary.benign_hosts)
    for host in summary.benign_hosts:
        assert len(by_source[host]) <= 3, host
    sources = {p[IP].src for p in packets} - {summary.scanner, summary.scan_target}
    assert sources == set(summary.benign_hosts)


def test_benign_traffic_is_well_formed(scenario):
    _, packets = scenario
    queries = [p for p in packets if DNS in p and p[DNS].qr == 0]
    answers = [p for p in packets if DNS in p and p[DNS].qr == 1]
    assert queries and len(queries) == len(answers)
    assert {p[DNS].qd[0].qtype for p in queries} == {1, 28}  # A and AAAA
    assert all(p[IP].dst == "10.10.2.53" for p in queries)
    payloads = [bytes(p[Raw]) for p in packets if TCP in p and Raw in p]
    requests = [b for b in payloads if b.startswith(b"GET ")]
    assert requests and all(b"\r\nHost: " in b and b"\r\nUser-Agent: " in b for b in requests)
    assert sum(b.startswith(b"HTTP/1.1 200 OK") for b in payloads) == len(requests)
    assert max(len(b) for b in payloads) == 1460
    assert sum(p[TCP].flags == "FA" for p in packets if TCP in p) == 2 * len(requests)


def test_timestamps_never_decrease(scenario):
    _, packets = scenario
    times = [p.time for p in packets]
    assert times == sorted(times)


def test_lengths_and_checksums_are_correct(scenario):
    _, packets = scenario
    for packet in packets[:300]:
        rebuilt = packet.__class__(bytes(packet))
        for layer in (IP, TCP):
            if layer in packet:
                fresh = rebuilt[layer].copy()
                fresh.chksum = None
                assert layer(bytes(fresh)).chksum == packet[layer].chksum
        assert packet[IP].len == len(packet[IP])


def _small(path: Path, **kwargs) -> ScenarioSummary:
    return write_scenario(str(path), scan_ports=30, benign_sessions=4, **kwargs)


def test_same_seed_and_start_give_identical_bytes(tmp_path):
    first = _small(tmp_path / "a.pcap", seed=3, start=START)
    second = _small(tmp_path / "b.pcap", seed=3, start=START)
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()
    assert first.scanner == second.scanner and first.packets == second.packets


def test_different_seed_gives_different_bytes(tmp_path):
    _small(tmp_path / "a.pcap", seed=3, start=START)
    _small(tmp_path / "b.pcap", seed=4, start=START)
    assert (tmp_path / "a.pcap").read_bytes() != (tmp_path / "b.pcap").read_bytes()


def test_default_start_and_scan_size(tmp_path):
    summary = write_scenario(str(tmp_path / "s.pcap"), scan_ports=1500, benign_sessions=2)
    assert summary.start == pytest.approx(DEFAULT_START)
    ports = _syn_ports_by_source(rdpcap(str(tmp_path / "s.pcap")))[summary.scanner]
    assert len(ports) == 1500 and {22, 80, 443} <= ports


@pytest.mark.parametrize("kwargs", [{"scan_ports": 0}, {"scan_ports": 70000},
                                    {"benign_sessions": 0}])
def test_rejects_bad_sizes(tmp_path, kwargs):
    with pytest.raises(ValueError):
        write_scenario(str(tmp_path / "x.pcap"), **kwargs)

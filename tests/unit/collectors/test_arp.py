"""ARP requests from the capture (collectors/capture/arp.py): broadcast requests for an IPv4
address become `watchkeeper.arp` events; re-checks, announcements, probes and replies do not."""
from __future__ import annotations

import pytest
from scapy.all import ARP, IP, TCP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, rdpcap, wrpcap

from collectors.capture.arp import arp_requests
from collectors.capture.meter import Capture, CaptureStats
from collectors.capture.sources.pcap import open_records
from tests.datafiles import data_file
from tests.unit.collectors.packets import batches, either_engine  # noqa: F401
from watchkeeper import schema
from watchkeeper.networks import InternalNetworks

MAC = "02:00:00:00:00:0a"
BCAST = "ff:ff:ff:ff:ff:ff"


def request(target, sender="192.168.1.71", dst=BCAST, op=1, hwdst="00:00:00:00:00:00"):
    return Ether(src=MAC, dst=dst) / ARP(op=op, hwsrc=MAC, psrc=sender, hwdst=hwdst,
                                         pdst=target)


def _arps(tmp_path, frames):
    return [r for b in batches(tmp_path, list(enumerate(frames, 1000))) for r in arp_requests(b)]


def test_broadcast_requests_are_read_with_and_without_vlan_tags(tmp_path):
    tagged = Ether(src=MAC, dst=BCAST) / Dot1Q(vlan=10) / ARP(
        op=1, hwsrc=MAC, psrc="10.1.0.5", pdst="10.1.0.9")
    qinq = Ether(src=MAC, dst=BCAST) / Dot1AD(vlan=100) / Dot1Q(vlan=10) / ARP(
        op=1, hwsrc=MAC, psrc="10.1.0.5", pdst="10.1.0.10")
    records = _arps(tmp_path, [request("192.168.1.2"), tagged, qinq])
    assert [(r.kind, r.orig_ip, r.resp_ip) for r in records] == [
        ("arp", "192.168.1.71", "192.168.1.2"), ("arp", "10.1.0.5", "10.1.0.9"),
        ("arp", "10.1.0.5", "10.1.0.10")]
    assert records[0].request.sender_mac == "02-00-00-00-00-0A" and records[0].ts == 1000


def test_rechecks_announcements_probes_replies_and_other_frames_are_not_requests(tmp_path):
    frames = [
        request("192.168.1.2", dst="02:00:00:00:00:02"),        # unicast re-check
        request("192.168.1.71"),                                # gratuitous: sender = target
        request("192.168.1.9", sender="0.0.0.0"),               # RFC 5227 probe
        request("192.168.1.9", op=2, dst=BCAST),                # a reply
        Ether(src=MAC, dst=BCAST) / IP(src="192.168.1.71", dst="192.168.1.255") / TCP(),
        Ether(src=MAC, dst=BCAST, type=0x0806) / b"\x00\x01\x08\x00",     # cut short
    ]
    assert _arps(tmp_path, frames) == []


def test_the_capture_reports_them_as_valid_events_with_stable_ids(tmp_path, either_engine):
    frames = [(1000 + i * 0.01, request(f"192.168.1.{i}")) for i in range(2, 40)]
    frames.append((1001.0, Ether() / IP(src="192.168.1.71", dst="192.168.1.1") / TCP(
        flags="S")))

    def documents():
        stats = CaptureStats()
        docs = list(Capture(batches(tmp_path, frames), stats=stats, app=True).documents(
            "sensor-1", InternalNetworks()))
        return [d for d in docs if d["event"]["dataset"] == schema.ARP], stats

    arp, stats = documents()
    assert len(arp) == 38 and stats.arp_requests == 38 and stats.non_ip == 38
    doc = arp[0]
    assert schema.validate(doc) is doc
    assert doc["source"] == {"ip": "192.168.1.71", "mac": "02-00-00-00-00-0A"}
    assert doc["destination"] == {"ip": "192.168.1.2"}
    assert doc["network"]["protocol"] == "arp" and doc["network"]["direction"] == "internal"
    assert [d["event"]["id"] for d in documents()[0]] == [d["event"]["id"] for d in arp]
    without_app = list(Capture(batches(tmp_path, frames)).documents("s", InternalNetworks()))
    assert all(d["event"]["dataset"] == schema.FLOW for d in without_app)


def _cooked(frames, layer, kind):
    """Ethernet ARP frames as a Linux cooked capture (`tcpdump -i any`) records them: the
    same ARP body behind an SLL or SLL2 header with the sender's address and `kind`
    (scapy's layers give the bytes Linux writes, checked against a `tcpdump -i any -y
    LINUX_SLL`/`LINUX_SLL2` recording of `nmap -sn` between two network namespaces)."""
    cooked = []
    for frame in frames:
        pkt = layer(pkttype=kind, lladdrtype=1, lladdrlen=6,
                    src=bytes.fromhex(frame.src.replace(":", "")), proto=0x0806) / frame[ARP]
        pkt.time = frame.time
        cooked.append(pkt)
    return cooked


@pytest.mark.parametrize("layer", [CookedLinux, CookedLinuxV2])
def test_a_cooked_capture_gives_the_received_broadcast_requests(tmp_path, layer):
    # Slips' ARP-scan capture as a sensor capturing on `-i any` would have it.
    frames = [f for f in rdpcap(str(data_file("scan/slips_test8-arp-scan.pcap"))) if ARP in f]
    ethernet = [(r.orig_ip, r.resp_ip) for b in open_records(
        str(data_file("scan/slips_test8-arp-scan.pcap"))) for r in arp_requests(b)]
    # the sweeper asked for 253 addresses by broadcast (two more by unicast: not counted)
    assert len({asked for sender, asked in ethernet if sender == "192.168.1.247"}) == 253

    def requests(kind):
        path = tmp_path / f"{kind}.pcap"
        wrpcap(str(path), _cooked([f for f in frames if f.dst == BCAST], layer, kind))
        return [(r.orig_ip, r.resp_ip) for b in open_records(str(path))
                for r in arp_requests(b)]

    assert requests(1) == ethernet           # received broadcasts: every request, in order
    # The sensor's own requests: no destination in the cooked header, so a broadcast cannot
    # be told from a unicast re-check; none is counted.
    assert requests(4) == []

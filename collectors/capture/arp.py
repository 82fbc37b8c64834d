"""ARP requests from captured frames: who asked for which IPv4 address (`watchkeeper.arp`).

Host discovery on a local segment (`nmap -sn`, arp-scan, netdiscover, a worm's first hop) sends
no IP packet to the hosts it looks for: it asks "who has 192.168.1.x?" for every address. Flows
never show it, so the capture reads these requests itself, as Zeek's ARP analyzer and
Suricata's `arp` events do, and the scan detector counts them (detectors/sweep.py).

Kept: broadcast requests, the ones a host sends for an address it has not resolved: on
Ethernet, destination ff:ff:ff:ff:ff:ff, up to two VLAN tags; in Linux "cooked" captures
(`tcpdump -i any`, SLL and SLL2), the frames the kernel marked as received broadcasts. Left
out, each for a reason:
- unicast requests: a host re-checking a neighbour it already knows (Linux does so every
  ~30 s per active neighbour), not discovery;
- gratuitous ARP (sender = target) and ARP probes (sender 0.0.0.0, RFC 5227 duplicate address
  detection): a host announcing or checking its own address;
- a cooked capture's outgoing requests (the sensor's own): the cooked header has no
  destination address, so a broadcast cannot be told from a unicast re-check, and a router
  capturing on `-i any` re-checks hundreds of neighbours;
- replies, and other link types: not read.

The frames are found with numpy over the whole batch (one look at each record's ethertype,
another behind each VLAN tag); only broadcast ARP frames reach Python, so the cost on a batch
without ARP is a few nanoseconds a record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.capture.appmeta.tracker import AppRecord
from collectors.capture.sources.pcap import RecordBatch

ETHERNET = 1                    # pcap link types
LINUX_SLL, LINUX_SLL2 = 113, 276
SLL_BROADCAST = 1               # cooked header's packet type: a broadcast this host received
ETH_ARP = 0x0806
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
ARP_LEN = 28                    # Ethernet/IPv4 ARP body


@dataclass(frozen=True)
class ArpRequest:
    sender_mac: str             # ECS form: upper case, hyphens


def arp_requests(batch: RecordBatch) -> list[AppRecord]:
    """The batch's broadcast ARP requests for an IPv4 address, as `AppRecord(kind="arp")`:
    `orig_ip` the asking host, `resp_ip` the address asked for (ports 0, no flow)."""
    records = []
    ethernet, cooked = _arp_frames(batch), _cooked_arp_frames(batch)
    for i, body_at in zip(np.concatenate((ethernet[0], cooked[0])),
                          np.concatenate((ethernet[1], cooked[1]))):
        body = batch.data[body_at:body_at + ARP_LEN].tobytes()
        record = _request(body, float(batch.ts[i]))
        if record is not None:
            records.append(record)
    return records


def _arp_frames(batch: RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the Ethernet records sent to the broadcast address whose ethertype, after up
    to two VLAN tags, is ARP, and where each one's ARP body starts in `batch.data`. Every
    record is looked at once; only tagged frames (usually none) are looked at again behind
    their tag. (Unicast requests are a host re-checking a neighbour it already knows.)"""
    idx = np.flatnonzero((batch.linktype == ETHERNET) & (batch.caplen >= 14 + ARP_LEN))
    at = batch.offset[idx] + 12                     # the ethertype
    end = batch.offset[idx] + batch.caplen[idx]
    found, bodies = [], []
    for _ in range(3):                              # untagged, then behind one or two tags
        fits = at + 2 + ARP_LEN <= end
        idx, at, end = idx[fits], at[fits], end[fits]
        ethertype = _be(batch.data, at, 2)
        arp = ethertype == ETH_ARP
        found.append(idx[arp])
        bodies.append(at[arp] + 2)
        tagged = np.isin(ethertype, VLAN_TAGS)
        idx, at, end = idx[tagged], at[tagged] + 4, end[tagged]
    idx, bodies = np.concatenate(found), np.concatenate(bodies)
    destination = batch.data[batch.offset[idx][:, None] + np.arange(6)]
    broadcast = (destination == 0xFF).all(axis=1)
    return idx[broadcast], bodies[broadcast]


def _cooked_arp_frames(batch: RecordBatch) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the Linux cooked records that are received broadcast ARP frames, and where
    each one's ARP body starts. SLL: packet type (2 bytes) at 0, protocol at 14, body at 16;
    SLL2: protocol at 0, packet type (1 byte) at 10, body at 20."""
    found, bodies = [], []
    for linktype, kind_at, kind_len, proto_at, header in ((LINUX_SLL, 0, 2, 14, 16),
                                                         (LINUX_SLL2, 10, 1, 0, 20)):
        idx = np.flatnonzero((batch.linktype == linktype) & (batch.caplen >= header + ARP_LEN))
        start = batch.offset[idx]
        kind = _be(batch.data, start + kind_at, kind_len)
        arp = (kind == SLL_BROADCAST) & (_be(batch.data, start + proto_at, 2) == ETH_ARP)
        found.append(idx[arp])
        bodies.append(start[arp] + header)
    return np.concatenate(found), np.concatenate(bodies)


def _be(data: np.ndarray, at: np.ndarray, length: int) -> np.ndarray:
    """The big-endian unsigned integers of `length` (1 or 2) bytes at each of `at`."""
    value = data[at].astype(np.int64)
    return (value << 8) | data[at + 1] if length == 2 else value


def _request(body: bytes, ts: float) -> AppRecord | None:
    # hardware Ethernet (1), protocol IPv4, lengths 6/4, operation request (1)
    if body[0:8] != b"\x00\x01\x08\x00\x06\x04\x00\x01":
        return None
    sender_ip, target_ip = body[14:18], body[24:28]
    if sender_ip == b"\x00\x00\x00\x00" or sender_ip == target_ip:
        return None
    mac = "-".join(f"{b:02X}" for b in body[8:14])
    return AppRecord(kind="arp", ts=ts, proto=0, orig_ip=_ip(sender_ip), orig_port=0,
                     resp_ip=_ip(target_ip), resp_port=0, flow_key="",
                     request=ArpRequest(mac))


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)

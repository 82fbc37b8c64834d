"""ARP requests from captured frames: who asked for which IPv4 address (`watchkeeper.arp`).

Host discovery on a local segment (`nmap -sn`, arp-scan, netdiscover, a worm's first hop) sends
no IP packet to the hosts it looks for: it asks "who has 192.168.1.x?" for every address. Flows
never show it, so the capture reads these requests itself, as Zeek's ARP analyzer and
Suricata's `arp` events do, and the scan detector counts them (detectors/arp_sweep.py).

Kept: broadcast requests (Ethernet destination ff:ff:ff:ff:ff:ff), the ones a host sends for
an address it has not resolved, up to two VLAN tags. Left out, each for a reason:
- unicast requests: a host re-checking a neighbour it already knows (Linux does so every
  ~30 s per active neighbour), not discovery;
- gratuitous ARP (sender = target) and ARP probes (sender 0.0.0.0, RFC 5227 duplicate address
  detection): a host announcing or checking its own address;
- replies, and other link types (Linux "cooked" captures): not read yet.

The frames are found with numpy over the whole batch (two byte gathers per record); only
ARP frames reach Python, so the cost on a batch without ARP is a few nanoseconds a record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.capture.appmeta.tracker import AppRecord
from collectors.capture.sources.pcap import RecordBatch

ETHERNET = 1                    # pcap link type
ETH_ARP = 0x0806
VLAN_TAGS = (0x8100, 0x88A8, 0x9100)
ARP_LEN = 28                    # Ethernet/IPv4 ARP body
BROADCAST = b"\xff" * 6


@dataclass(frozen=True)
class ArpRequest:
    sender_mac: str             # ECS form: upper case, hyphens


def arp_requests(batch: RecordBatch) -> list[AppRecord]:
    """The batch's broadcast ARP requests for an IPv4 address, as `AppRecord(kind="arp")`:
    `orig_ip` the asking host, `resp_ip` the address asked for (ports 0, no flow)."""
    candidates = _arp_frames(batch)
    records = []
    for i in candidates:
        start, length = int(batch.offset[i]), int(batch.caplen[i])
        frame = batch.data[start:start + length].tobytes()
        record = _request(frame, float(batch.ts[i]))
        if record is not None:
            records.append(record)
    return records


def _arp_frames(batch: RecordBatch) -> np.ndarray:
    """Indexes of the Ethernet records whose ethertype, after up to two VLAN tags, is ARP."""
    if not len(batch):
        return np.empty(0, np.int64)
    idx = np.flatnonzero((batch.linktype == ETHERNET) & (batch.caplen >= 14 + ARP_LEN))
    if not len(idx):
        return idx
    found = np.zeros(len(idx), bool)
    live = np.ones(len(idx), bool)
    at = batch.offset[idx] + 12
    end = batch.offset[idx] + batch.caplen[idx]
    for _ in range(3):              # the ethertype, then behind one or two tags
        ok = live & (at + 2 + ARP_LEN <= end)
        where = np.where(ok, at, 0)
        ethertype = (batch.data[where].astype(np.int64) << 8) | batch.data[where + 1]
        found |= ok & (ethertype == ETH_ARP)
        live = ok & np.isin(ethertype, VLAN_TAGS)
        at = at + 4
    return idx[found]


def _request(frame: bytes, ts: float) -> AppRecord | None:
    if frame[0:6] != BROADCAST:
        return None
    at = 12
    while int.from_bytes(frame[at:at + 2], "big") in VLAN_TAGS:
        at += 4
    body = frame[at + 2:at + 2 + ARP_LEN]
    # hardware Ethernet (1), protocol IPv4, lengths 6/4, operation request (1)
    if len(body) < ARP_LEN or body[0:8] != b"\x00\x01\x08\x00\x06\x04\x00\x01":
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

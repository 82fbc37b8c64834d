"""A large, valid pcap written in bulk with numpy: one UDP packet per flow, so a capture of N
packets yields exactly N flow events (no application layer: the port speaks no protocol we
parse). Used to prove that nothing is lost at volumes real sensors see (issue 9).

Hosts come from small pools (a few thousand clients, a hundred servers), so detectors see a
realistic spread of keys rather than one event per key.
"""
from __future__ import annotations

import struct

import numpy as np

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)   # Ethernet
_PAYLOAD = b"wkpt"
_FRAME = 14 + 20 + 8 + len(_PAYLOAD)
_RECORD = 16 + _FRAME
_ROW = np.dtype([("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl", "<u4"), ("orig", "<u4"),
                 ("eth", "S14"), ("ver_ihl", "u1"), ("tos", "u1"), ("ip_len", ">u2"),
                 ("ip_id", ">u2"), ("frag", ">u2"), ("ttl", "u1"), ("proto", "u1"),
                 ("ip_sum", ">u2"), ("src", ">u4"), ("dst", ">u4"), ("sport", ">u2"),
                 ("dport", ">u2"), ("udp_len", ">u2"), ("udp_sum", ">u2"),
                 ("payload", f"S{len(_PAYLOAD)}")])
assert _ROW.itemsize == _RECORD


def _ip_checksums(rows: np.ndarray) -> np.ndarray:
    """RFC 791 header checksums of every row at once (16-bit one's-complement sum), computed
    while the checksum field is still zero."""
    raw = np.frombuffer(rows.tobytes(), dtype=np.uint8).reshape(len(rows), _RECORD)
    header = raw[:, 16 + 14:16 + 14 + 20].astype(np.uint32)
    total = (header[:, 0::2] * 256 + header[:, 1::2]).sum(axis=1)
    while (total >> 16).any():
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF).astype(np.uint16)


def write_flows_pcap(path: str, flows: int, start: float = 1_700_000_000.0,
                     spacing_us: int = 500, seed: int = 11, batch: int = 200_000) -> int:
    """Write `flows` single-packet UDP flows (distinct 5-tuples); returns how many."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(_PCAP_HEADER)
        for first in range(0, flows, batch):
            n = min(batch, flows - first)
            index = np.arange(first, first + n, dtype=np.uint64)
            rows = np.zeros(n, dtype=_ROW)
            micros = int(start * 1e6) + index * spacing_us
            rows["ts_sec"], rows["ts_usec"] = micros // 1_000_000, micros % 1_000_000
            rows["incl"] = rows["orig"] = _FRAME
            rows["eth"] = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
            rows["ver_ihl"], rows["ttl"], rows["proto"] = 0x45, 64, 17
            rows["ip_len"] = 20 + 8 + len(_PAYLOAD)
            rows["ip_id"] = index & 0xFFFF
            # client = flow number mod 4000 and source port = flow number div 4000:
            # every 5-tuple is distinct for 256 M flows
            rows["src"] = 0x0A010000 + index % 4000                # 10.1.0.0/16
            rows["sport"] = 1024 + (index // 4000) % 64000
            rows["dst"] = 0x0A020000 + rng.integers(0, 100, n)     # 10.2.0.0/24
            rows["dport"] = 40000 + rng.integers(0, 7, n)
            rows["udp_len"] = 8 + len(_PAYLOAD)
            rows["payload"] = _PAYLOAD
            rows["ip_sum"] = _ip_checksums(rows)
            out.write(rows.tobytes())
    return flows

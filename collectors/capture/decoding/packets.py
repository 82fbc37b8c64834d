"""Header decoding for record batches: a vectorised numpy fast path plus a Python slow path.

The fast path covers what almost all traffic looks like (Ethernet, up to two VLAN tags,
unfragmented IPv4 / IPv6 without extension headers, TCP/UDP/ICMP and other IP protocols).
Everything else - MPLS, PPPoE, FabricPath, Linux SLL, raw IP, IPv6 extension headers, IP
fragments, Teredo tunnels, truncated or corrupt headers, checksum verification - goes to the
per-packet slow path in `decoding/reference.py`. Both produce the same columns (`Packets`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collectors.capture.sources.pcap import RecordBatch

# Packet status codes (see CaptureStats for what each is counted as).
OK, MALFORMED, NON_IP, FRAG_HELD, BADSUM = 0, 1, 2, 3, 4
VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
SLOW_UDP_PORTS = (3544,)      # Teredo: decapsulated by the slow path (Zeek does too)
TEREDO_PREFIX = 0x20010000


def _counterparts(pairs: dict[int, int]) -> np.ndarray:
    table = np.full(256, -1, np.int64)
    for a, b in pairs.items():
        table[a], table[b] = b, a
    return table


# Zeek pairs ICMP requests with replies by mapping a type to its counterpart type;
# one-way types use the code instead (ICMP4_counterpart / ICMP6_counterpart).
ICMP4_PAIRS = _counterparts({8: 0, 13: 14, 15: 16, 10: 9, 17: 18})
ICMP6_PAIRS = _counterparts({128: 129, 133: 134, 135: 136, 130: 131, 139: 140, 144: 145})


@dataclass
class Packets:
    """Decoded header fields, one row per packet (a tunnel can add rows)."""
    ts: np.ndarray          # float64
    status: np.ndarray      # uint8, OK/MALFORMED/NON_IP/FRAG_HELD/BADSUM
    proto: np.ndarray       # int64 IP protocol (58 = ICMPv6)
    v6: np.ndarray          # bool
    src: np.ndarray         # (n,16) uint8, IPv4 as ::ffff:a.b.c.d
    dst: np.ndarray
    sport: np.ndarray       # int64 (ICMP: type)
    dport: np.ndarray       # int64 (ICMP: counterpart type or code)
    flags: np.ndarray       # int64 TCP flags
    seq: np.ndarray         # int64 (uint32 values)
    ack: np.ndarray
    paylen: np.ndarray      # int64 transport payload bytes
    iplen: np.ndarray       # int64 IP total length
    tunnel: np.ndarray      # bool: decapsulated from a tunnel (Zeek logs tunnel_parents)
    payoff: np.ndarray      # int64 offset of the TCP/UDP payload in the batch data, -1: none
    paycap: np.ndarray      # int64 payload bytes captured there (snaplen may cut it)

    def __len__(self) -> int:
        return len(self.ts)


def empty_packets(n: int) -> Packets:
    z = np.zeros(n, np.int64)
    return Packets(np.zeros(n), np.zeros(n, np.uint8), z.copy(), np.zeros(n, bool),
                   np.zeros((n, 16), np.uint8), np.zeros((n, 16), np.uint8), z.copy(),
                   z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(),
                   np.zeros(n, bool), np.full(n, -1, np.int64), z.copy())


def concat(parts: list[Packets]) -> Packets:
    if len(parts) == 1:
        return parts[0]
    fields = Packets.__dataclass_fields__
    return Packets(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def take(p: Packets, idx: np.ndarray) -> Packets:
    return Packets(**{f: getattr(p, f)[idx] for f in Packets.__dataclass_fields__})


def merge(a: Packets, a_records: np.ndarray, b: Packets, b_records: np.ndarray) -> Packets:
    """Rows of two decoders back in record order (`*_records`: each row's record index);
    a record's rows from `b` follow its rows from `a`."""
    order = np.argsort(np.concatenate([a_records, b_records]), kind="stable")
    return take(concat([a, b]), order)


class _Gather:
    """Bounds-safe big-endian field reads at per-packet byte positions."""

    def __init__(self, data: np.ndarray):
        self.u8 = data
        self.last = max(len(data) - 1, 0)

    def u8_at(self, pos: np.ndarray) -> np.ndarray:
        return self.u8[np.minimum(pos, self.last)].astype(np.int64)

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8_at(pos) << 8) | self.u8_at(pos + 1)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)

    def block(self, pos: np.ndarray, width: int) -> np.ndarray:
        idx = np.minimum(pos[:, None] + np.arange(width), self.last)
        return self.u8[idx]


@dataclass
class FastResult:
    packets: Packets        # rows for records the fast path decoded
    fast_index: np.ndarray  # record index of each row
    slow_index: np.ndarray  # record indices left for the slow path


def decode_fast(batch: RecordBatch, verify_checksums: bool = False) -> FastResult:
    """Vectorised decode of the common encapsulations; the rest is left to the slow path."""
    n = len(batch)
    if verify_checksums or n == 0:
        return FastResult(empty_packets(0), np.zeros(0, np.int64), np.arange(n))
    g = _Gather(batch.data)
    o, cap = batch.offset, batch.caplen
    end = o + cap
    et, l3 = _ethernet(g, o)
    ok = (batch.linktype == 1) & (l3 + 20 <= end)
    v4, v6 = ok & (et == 0x0800), ok & (et == 0x86DD)
    b0 = g.u8_at(l3)
    v4 &= (b0 >> 4) == 4
    v6 &= ((b0 >> 4) == 6) & (l3 + 40 <= end)
    ihl = np.where(v6, 40, (b0 & 15) * 4)
    total = np.where(v6, g.u16(l3 + 4) + 40, g.u16(l3 + 2))
    proto = np.where(v6, g.u8_at(l3 + 6), g.u8_at(l3 + 9))
    frag = g.u16(l3 + 6) & 0x3FFF
    v4 &= (ihl >= 20) & (frag == 0) & (total >= ihl)
    v6 &= np.isin(proto, (6, 17, 58))          # extension headers: slow path
    l4 = l3 + ihl
    hdr_need = np.select([proto == 6, proto == 17], [20, 8], 4)
    good = (v4 | v6) & (l4 + np.where(np.isin(proto, (6, 17, 1, 58)), hdr_need, 0) <= end)
    good &= total <= 65535 + 40
    sport, dport = g.u16(l4), g.u16(l4 + 2)
    is_tcp, is_udp = proto == 6, proto == 17
    doff = (g.u8_at(l4 + 12) >> 4) * 4
    transport_len = total - ihl
    paylen = np.select([is_tcp, is_udp, np.isin(proto, (1, 58))],
                       [transport_len - doff, transport_len - 8, transport_len - 8],
                       transport_len)
    good &= ~(is_tcp & ((doff < 20) | (paylen < 0))) & ~(is_udp & (paylen < 0))
    good &= ~(is_udp & (np.isin(sport, SLOW_UDP_PORTS) | np.isin(dport, SLOW_UDP_PORTS)
                        | _looks_teredo(g, l4 + 8, paylen)))
    idx = np.flatnonzero(good)
    pk = _fast_rows(g, batch, idx, l3[idx], l4[idx], proto[idx], v6[idx], total[idx],
                    paylen[idx], sport[idx], dport[idx])
    payoff = l4 + np.where(is_tcp, doff, 8)
    has_payload = (is_tcp | is_udp)[idx] & (paylen[idx] > 0)
    pk.payoff = np.where(has_payload, payoff[idx], -1)
    pk.paycap = np.where(has_payload, np.clip(np.minimum(paylen[idx], end[idx] - payoff[idx]),
                                              0, None), 0)
    return FastResult(pk, idx, np.flatnonzero(~good))


def _looks_teredo(g: _Gather, pay: np.ndarray, paylen: np.ndarray) -> np.ndarray:
    # Zeek's dpd_teredo signature: an IPv6 header whose source or destination is in
    # 2001:0000::/32 (Teredo) inside UDP on any port.
    v6 = (paylen >= 40) & ((g.u8_at(pay) >> 4) == 6)
    return v6 & ((g.u32(pay + 8) == TEREDO_PREFIX) | (g.u32(pay + 24) == TEREDO_PREFIX))


def _ethernet(g: _Gather, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    et, l3 = g.u16(o + 12), o + 14
    for _ in range(2):              # 802.1Q / QinQ
        tagged = np.isin(et, VLAN_TYPES)
        et = np.where(tagged, g.u16(l3 + 2), et)
        l3 = np.where(tagged, l3 + 4, l3)
    return et, l3


def _fast_rows(g: _Gather, batch: RecordBatch, idx, l3, l4, proto, v6, total, paylen,
               sport, dport) -> Packets:
    m = idx.size
    p = empty_packets(m)
    p.ts = batch.ts[idx]
    p.proto, p.v6, p.iplen, p.paylen = proto, v6, total, paylen
    src16 = g.block(l3 + 8, 16)
    dst16 = g.block(l3 + 24, 16)
    v4rows = ~v6
    if v4rows.any():
        src16[v4rows] = _mapped(g.block(l3[v4rows] + 12, 4))
        dst16[v4rows] = _mapped(g.block(l3[v4rows] + 16, 4))
    p.src, p.dst = src16, dst16
    is_tcp = proto == 6
    ports = is_tcp | (proto == 17)
    p.sport = np.where(ports, sport, 0)
    p.dport = np.where(ports, dport, 0)
    p.flags = np.where(is_tcp, g.u8_at(l4 + 13), 0)
    p.seq = np.where(is_tcp, g.u32(l4 + 4), 0)
    p.ack = np.where(is_tcp, g.u32(l4 + 8), 0)
    icmp = (proto == 1) | (proto == 58)
    if icmp.any():
        itype, icode = g.u8_at(l4[icmp]), g.u8_at(l4[icmp] + 1)
        table = np.where(proto[icmp] == 58, ICMP6_PAIRS[itype], ICMP4_PAIRS[itype])
        p.sport[icmp] = itype
        p.dport[icmp] = np.where(table >= 0, table, icode)
    return p


def _mapped(v4: np.ndarray) -> np.ndarray:
    out = np.zeros((len(v4), 16), np.uint8)
    out[:, 10:12] = 0xFF
    out[:, 12:] = v4
    return out

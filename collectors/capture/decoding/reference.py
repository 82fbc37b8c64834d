"""Per-packet decoding for everything the vectorised fast path leaves out.

Handles link layers (Ethernet + VLAN/QinQ/MPLS/PPPoE/FabricPath, Linux SLL, BSD loopback,
raw IP), IPv6 extension headers, IPv4/IPv6 fragments (reassembled into one datagram, as
Zeek does), Teredo decapsulation, optional checksum verification, and every malformed or
truncated header. It never raises on packet content: bad input becomes a MALFORMED row.
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from collectors.capture.decoding import packets as D
from collectors.capture.decoding.fragments import HEADER, MAX_PIECES
from collectors.capture.sources.pcap import RecordBatch

_V4_PREFIX = b"\x00" * 10 + b"\xff\xff"
_EXT_HEADERS = {0, 43, 60, 135, 139, 140}   # hop-by-hop, routing, dest opts, mobility, HIP, shim6
ICMP4_CP = {int(k): int(v) for k, v in enumerate(D.ICMP4_PAIRS) if v >= 0}
ICMP6_CP = {int(k): int(v) for k, v in enumerate(D.ICMP6_PAIRS) if v >= 0}


class Malformed(Exception):
    """Internal: the packet cannot be decoded (caught, counted)."""


@dataclass
class Row:
    status: int
    proto: int = 0
    v6: bool = False
    src: bytes = b""
    dst: bytes = b""
    sport: int = 0
    dport: int = 0
    flags: int = 0
    seq: int = 0
    ack: int = 0
    paylen: int = 0
    iplen: int = 0
    tunnel: bool = False
    payoff: int = -1        # payload offset in the frame (-1: reassembled, tunnelled, none)
    paycap: int = 0


@dataclass
class _Frag:
    first_seen: float
    header: bytes | None = None     # IP header + start of transport of the offset-0 fragment
    received: int = 0
    total: int | None = None        # payload length once the last fragment arrived
    pieces: set = field(default_factory=set)


class SlowDecoder:
    """Stateful (fragments) per-packet decoder."""

    def __init__(self, verify_checksums: bool = False, max_fragments: int = 10000,
                 fragment_timeout: float = 60.0):
        self.verify_checksums = verify_checksums
        self.max_fragments = max_fragments
        self.fragment_timeout = fragment_timeout
        self.frags: OrderedDict[tuple, _Frag] = OrderedDict()
        self.fragments_seen = 0

    def decode(self, batch: RecordBatch, index: np.ndarray) -> tuple[D.Packets, np.ndarray]:
        rows, owners, times = [], [], []
        data = batch.data
        for i in index.tolist():
            start = int(batch.offset[i])
            frame = bytes(data[start:start + int(batch.caplen[i])])
            ts = float(batch.ts[i])
            for row in self.frame(frame, int(batch.linktype[i]), ts):
                if row.payoff >= 0:
                    row.payoff += start
                rows.append(row)
                owners.append(i)
                times.append(ts)
        return _to_packets(rows, times), np.asarray(owners, np.int64)

    def frame(self, frame: bytes, linktype: int, ts: float) -> list[Row]:
        try:
            ethertype, l3 = link_layer(frame, linktype)
            if ethertype == 0x0800:
                return self.ipv4(frame[l3:], ts, at=l3)
            if ethertype == 0x86DD:
                return self.ipv6(frame[l3:], ts, at=l3)
            return [Row(D.NON_IP)]
        except (Malformed, struct.error, IndexError, ValueError):
            return [Row(D.MALFORMED)]

    # --- IP -----------------------------------------------------------------------------------
    def ipv4(self, pkt: bytes, ts: float, tunnel: bool = False,
             at: int | None = None) -> list[Row]:
        # `at`: where `pkt` starts in the frame, to locate the payload for app metadata.
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            raise Malformed("ipv4 header")
        ihl = (pkt[0] & 15) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        if ihl < 20 or len(pkt) < ihl or total < ihl:
            raise Malformed("ipv4 lengths")
        if self.verify_checksums and _csum(pkt[:ihl]) != 0:
            raise Malformed("bad IP header checksum")   # Zeek drops it before any conn
        src, dst, proto = _V4_PREFIX + pkt[12:16], _V4_PREFIX + pkt[16:20], pkt[9]
        frag = struct.unpack_from("!H", pkt, 6)[0]
        body = pkt[ihl:total] if total <= len(pkt) else pkt[ihl:]
        tlen = total - ihl
        if frag & 0x3FFF:
            key = (4, src, dst, struct.unpack_from("!H", pkt, 4)[0], proto)
            done = self._fragment(key, ts, (frag & 0x1FFF) * 8, tlen, bool(frag & 0x2000), body)
            if done is None:
                return [Row(D.FRAG_HELD)]
            body, tlen = done
            total, at = ihl + tlen, None
        pseudo = src[12:] + dst[12:] + struct.pack("!BBH", 0, proto, tlen)
        return self.transport(proto, False, src, dst, body, tlen, total, pseudo, ts, tunnel,
                              None if at is None else at + ihl, reassembled=bool(frag & 0x3FFF))

    def ipv6(self, pkt: bytes, ts: float, tunnel: bool = False,
             at: int | None = None) -> list[Row]:
        if len(pkt) < 40 or pkt[0] >> 4 != 6:
            raise Malformed("ipv6 header")
        plen, nh = struct.unpack_from("!HB", pkt, 4)
        src, dst = pkt[8:24], pkt[24:40]
        off, frag = 40, None
        while nh in _EXT_HEADERS or nh == 44:
            if off + 8 > len(pkt):
                raise Malformed("ipv6 extension header")
            if nh == 44:
                fo = struct.unpack_from("!H", pkt, off + 2)[0]
                frag = (struct.unpack_from("!I", pkt, off + 4)[0], fo & 0xFFF8, bool(fo & 1))
                nh, off = pkt[off], off + 8
            else:
                nh, off = pkt[off], off + (pkt[off + 1] + 1) * 8
        total = plen + 40
        tlen = total - off
        body = pkt[off:total]
        if tlen < 0:
            raise Malformed("ipv6 payload length")
        if frag and (frag[1] or frag[2]):
            done = self._fragment((6, src, dst, frag[0], nh), ts, frag[1], tlen, frag[2], body)
            if done is None:
                return [Row(D.FRAG_HELD)]
            body, tlen = done
            total, at = off + tlen, None
        pseudo = src + dst + struct.pack("!IxxxB", tlen, nh)
        return self.transport(nh, True, src, dst, body, tlen, total, pseudo, ts, tunnel,
                              None if at is None else at + off,
                              reassembled=bool(frag and (frag[1] or frag[2])))

    def transport(self, proto, v6, src, dst, body, tlen, total, pseudo, ts, tunnel, at=None,
                  reassembled=False):
        # `reassembled`: `body` is only the first HEADER bytes of the datagram, too little to
        # decapsulate a tunnel from, so Teredo is not looked for.
        row = Row(D.OK, proto=proto, v6=v6, src=src, dst=dst, iplen=total, tunnel=tunnel)
        if proto in (6, 17, 1, 58):
            need = {6: 20, 17: 8}.get(proto, 4)
            if len(body) < need or tlen < need:
                raise Malformed("transport header truncated")
            if self.verify_checksums and len(body) >= tlen and not _transport_ok(
                    proto, pseudo, body[:tlen]):
                row.status = D.BADSUM
        if proto == 6:
            row.sport, row.dport, row.seq, row.ack = struct.unpack_from("!HHII", body)
            doff = (body[12] >> 4) * 4
            if doff < 20 or doff > tlen:
                raise Malformed("tcp data offset")
            row.flags, row.paylen = body[13], tlen - doff
            _locate_payload(row, at, doff, len(body))
        elif proto == 17:
            row.sport, row.dport = struct.unpack_from("!HH", body)
            row.paylen = tlen - 8
            _locate_payload(row, at, 8, len(body))
            if row.status == D.OK and not reassembled and (
                    3544 in (row.sport, row.dport) or _looks_teredo(body[8:tlen])):
                return [row] + self._teredo(body[8:tlen], ts)
        elif proto in (1, 58):
            table = ICMP6_CP if proto == 58 else ICMP4_CP
            row.sport = body[0]
            row.dport = table.get(body[0], body[1])
            row.paylen = tlen - 8
        else:
            row.paylen = tlen
        return [row]

    def _teredo(self, payload: bytes, ts: float) -> list[Row]:
        # Teredo (RFC 4380): optional auth (type 1) and origin indication (type 0) headers,
        # then an IPv6 packet. Anything else is plain UDP payload.
        off = 0
        if payload[:2] == b"\x00\x01" and len(payload) >= 13:
            off = 13 + payload[2] + payload[3]
        if payload[off:off + 2] == b"\x00\x00":
            off += 8
        inner = payload[off:]
        if len(inner) < 40 or inner[0] >> 4 != 6:
            return []
        plen, nh = struct.unpack_from("!HB", inner, 4)
        if plen + 40 != len(inner) or (nh == 59 and plen == 0):
            return []           # not Teredo, or a bubble (keep-alive without payload)
        try:
            return self.ipv6(inner, ts, tunnel=True)
        except (Malformed, struct.error, IndexError):
            return []

    def _fragment(self, key, ts, offset, length, more, body):
        """Account one fragment; returns (payload, length) of the datagram once complete."""
        self.fragments_seen += 1
        entry = self.frags.get(key)
        if entry is None or ts - entry.first_seen > self.fragment_timeout:
            entry = self.frags[key] = _Frag(ts)
            while len(self.frags) > self.max_fragments:
                self.frags.popitem(last=False)
        if offset in entry.pieces or len(entry.pieces) >= MAX_PIECES:
            return None
        entry.pieces.add(offset)
        entry.received += length
        if offset == 0:
            entry.header = body[:HEADER]
        if not more:
            entry.total = offset + length
        if entry.total is None or entry.header is None or entry.received < entry.total:
            return None
        del self.frags[key]
        return entry.header, entry.total


def _locate_payload(row: Row, at: int | None, header: int, captured: int) -> None:
    if at is not None and row.paylen > 0:
        row.payoff, row.paycap = at + header, max(0, min(row.paylen, captured - header))


def _looks_teredo(payload: bytes) -> bool:
    # Same test as packets._looks_teredo (Zeek's dpd_teredo signature).
    return (len(payload) >= 40 and payload[0] >> 4 == 6
            and (payload[8:12] == b"\x20\x01\x00\x00" or payload[24:28] == b"\x20\x01\x00\x00"))


def link_layer(frame: bytes, linktype: int) -> tuple[int, int]:
    """(ethertype, offset of the network header) for the link types we decode."""
    if linktype == 1:
        return _ether(frame, 0)
    if linktype in (101, 12, 14, 228, 229):          # raw IP
        return _by_version(frame, 0)
    if linktype in (0, 108, 109):                    # BSD loopback / null
        return _by_version(frame, 4)
    if linktype == 113:                              # Linux cooked v1
        return _after_type(frame, struct.unpack_from("!H", frame, 14)[0], 16)
    if linktype == 276:                              # Linux cooked v2
        return _after_type(frame, struct.unpack_from("!H", frame, 0)[0], 20)
    return 0, 0


def _by_version(frame: bytes, off: int) -> tuple[int, int]:
    version = frame[off] >> 4
    return {4: 0x0800, 6: 0x86DD}.get(version, 0), off


def _ether(frame: bytes, off: int) -> tuple[int, int]:
    while True:         # a loop, not recursion: a frame of nested headers must not crash us
        et = struct.unpack_from("!H", frame, off + 12)[0]
        off += 14
        if et != 0x8903:                             # Cisco FabricPath: inner Ethernet frame
            return _after_type(frame, et, off)
        off += 2


def _after_type(frame: bytes, et: int, off: int) -> tuple[int, int]:
    for _ in range(8):
        if et in D.VLAN_TYPES:
            et, off = struct.unpack_from("!H", frame, off + 2)[0], off + 4
        elif et in (0x8847, 0x8848):                 # MPLS: pop labels to bottom of stack
            while not frame[off + 2] & 1:
                off += 4
            off += 4
            return _by_version(frame, off)
        elif et == 0x8864:                           # PPPoE session: PPP protocol after 6 bytes
            ppp = struct.unpack_from("!H", frame, off + 6)[0]
            return {0x0021: 0x0800, 0x0057: 0x86DD}.get(ppp, 0), off + 8
        else:
            return et, off
    return 0, off


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def _transport_ok(proto: int, pseudo: bytes, segment: bytes) -> bool:
    if proto == 17 and segment[6:8] == b"\x00\x00" and len(pseudo) == 12:
        return True                                  # IPv4 UDP without checksum
    if proto == 1:
        return _csum(segment) == 0
    return _csum(pseudo + segment) == 0


def _to_packets(rows: list[Row], times: list[float]) -> D.Packets:
    n = len(rows)
    p = D.empty_packets(n)
    if not n:
        return p
    p.ts = np.asarray(times, np.float64)
    p.status = np.fromiter((r.status for r in rows), np.uint8, n)
    for name in ("proto", "sport", "dport", "flags", "seq", "ack", "paylen", "iplen", "payoff",
                 "paycap"):
        setattr(p, name, np.fromiter((getattr(r, name) for r in rows), np.int64, n))
    p.v6 = np.fromiter((r.v6 for r in rows), bool, n)
    p.tunnel = np.fromiter((r.tunnel for r in rows), bool, n)
    for name in ("src", "dst"):
        raw = b"".join(getattr(r, name).ljust(16, b"\x00")[:16] for r in rows)
        setattr(p, name, np.frombuffer(raw, np.uint8).reshape(n, 16).copy())
    return p


class ReferenceDecoder:
    """The reference decode of record batches: packets.decode_fast (numpy) for the common
    shapes, this module's SlowDecoder for the rest, merged back into record order."""

    def __init__(self, verify_checksums: bool = False):
        self.verify_checksums = verify_checksums
        self.slow = SlowDecoder(verify_checksums)

    @property
    def fragments_seen(self) -> int:
        return self.slow.fragments_seen

    def decode(self, batch: RecordBatch) -> tuple[D.Packets, int]:
        """(decoded rows, how many records the per-packet path decoded)."""
        fast = D.decode_fast(batch, self.verify_checksums)
        rows, owners = self.slow.decode(batch, fast.slow_index)
        if not len(rows):
            return fast.packets, 0
        return D.merge(fast.packets, fast.fast_index, rows, owners), len(fast.slow_index)

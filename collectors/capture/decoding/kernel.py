"""Compiled header decoder: the per-packet rules of reference.SlowDecoder (the reference) as one
numba loop over a record batch, writing `packets.Packets` columns in record order.

Handled here: Ethernet (up to 8 802.1Q/QinQ tags, FabricPath, MPLS, PPPoE), Linux SLL
v1/v2, BSD loopback and raw IP link types; IPv4 and IPv6 with extension headers; IPv4/IPv6
fragments (reassembly accounting in fragments_kernel.py); TCP/UDP/ICMP/other transports;
non-IP frames. Left to the Python slow path, marked per record: Teredo (one record, two
rows), checksum verification, and every header that is truncated or corrupt *before* any
state is touched (the slow path reports it as malformed). The Python side is
decoding/compiled.py.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.decoding import packets as D
from collectors.capture.decoding.fragments_kernel import account
from collectors.capture.kernels.jit import PACKET_LOOP

OK, MALFORMED, NON_IP, FRAG_HELD = D.OK, D.MALFORMED, D.NON_IP, D.FRAG_HELD
SLOW = 255                          # internal: the record goes to the Python slow path
# Helpers that take the 16 output columns are inlined: a call would copy the whole tuple of
# array structs (~1 KB) per packet.
_V6_EXT = (0, 43, 60, 135, 139, 140)


@nb.njit(**PACKET_LOOP)
def _u16(b, p):
    return (np.int64(b[p]) << 8) | np.int64(b[p + 1])


@nb.njit(**PACKET_LOOP)
def _u32(b, p):
    return (_u16(b, p) << 16) | _u16(b, p + 2)


@nb.njit(**PACKET_LOOP)
def _is_ext(nh):
    return nh == 0 or nh == 43 or nh == 60 or nh == 135 or nh == 139 or nh == 140


@nb.njit(**PACKET_LOOP)
def _is_teredo_prefix(b, p):
    return b[p] == 0x20 and b[p + 1] == 0x01 and b[p + 2] == 0 and b[p + 3] == 0


@nb.njit(inline="always", **PACKET_LOOP)
def _after_type(u8, et, l3, end):
    """(ethertype, network offset) after VLAN tags, MPLS labels or a PPPoE header, as
    reference._after_type; ethertype SLOW when a header runs past the capture."""
    for _ in range(8):
        if et == 0x8100 or et == 0x88A8 or et == 0x9100:
            if l3 + 4 > end:
                return SLOW, l3
            et = _u16(u8, l3 + 2)
            l3 += 4
        elif et == 0x8847 or et == 0x8848:          # MPLS: pop labels to bottom of stack
            while True:
                if l3 + 2 >= end:
                    return SLOW, l3
                bottom = u8[l3 + 2] & 1
                l3 += 4
                if bottom:
                    break
            et2, l3 = _by_version(u8, l3, end)
            return et2, l3
        elif et == 0x8864:                          # PPPoE session: PPP protocol after 6 bytes
            if l3 + 8 > end:
                return SLOW, l3
            ppp = _u16(u8, l3 + 6)
            if ppp == 0x0021:
                return 0x0800, l3 + 8
            if ppp == 0x0057:
                return 0x86DD, l3 + 8
            return 0, l3 + 8
        else:
            return et, l3
    return 0, l3


@nb.njit(inline="always", **PACKET_LOOP)
def _by_version(u8, l3, end):
    if l3 >= end:
        return SLOW, l3
    v = u8[l3] >> 4
    if v == 4:
        return 0x0800, l3
    if v == 6:
        return 0x86DD, l3
    return 0, l3


@nb.njit(inline="always", **PACKET_LOOP)
def _link(u8, lt, o, end):
    """(ethertype, network offset) of one frame, as reference.link_layer."""
    cap = end - o
    if lt == 1:
        off = o
        while True:
            if off + 14 > end:
                return SLOW, o
            et = _u16(u8, off + 12)
            off += 14
            if et != 0x8903:                # Cisco FabricPath: an inner Ethernet frame
                break
            off += 2
        return _after_type(u8, et, off, end)
    if lt == 101 or lt == 12 or lt == 14 or lt == 228 or lt == 229:
        return _by_version(u8, o, end)
    if lt == 0 or lt == 108 or lt == 109:
        return _by_version(u8, o + 4, end)
    if lt == 113:
        if cap < 16:
            return SLOW, o
        return _after_type(u8, _u16(u8, o + 14), o + 16, end)
    if lt == 276:
        if cap < 2:
            return SLOW, o
        return _after_type(u8, _u16(u8, o), o + 20, end)
    return 0, o


@nb.njit(inline="always", **PACKET_LOOP)
def _clear(out, i, status):
    (ts, st, proto, v6, src, dst, sport, dport, flags, seq, ack, paylen, iplen, tunnel,
     payoff, paycap) = out
    st[i] = status
    proto[i] = 0
    v6[i] = False
    for k in range(16):
        src[i, k] = 0
        dst[i, k] = 0
    sport[i] = 0
    dport[i] = 0
    flags[i] = 0
    seq[i] = 0
    ack[i] = 0
    paylen[i] = 0
    iplen[i] = 0
    tunnel[i] = False
    payoff[i] = -1
    paycap[i] = 0


@nb.njit(inline="always", **PACKET_LOOP)
def _transport(out, i, b, at, blen, tlen, total, pr, is_v6, payload_at, icmp4, icmp6,
               reassembled):
    """Transport fields from `b[at:at+blen]` (the captured part of a `tlen`-byte segment).
    Returns OK, MALFORMED, or SLOW (Teredo). `payload_at`: absolute offset of the segment
    in the batch data, or -1 (reassembled: no payload bytes kept)."""
    (ts, st, proto, v6, src, dst, sport, dport, flags, seq, ack, paylen, iplen, tunnel,
     payoff, paycap) = out
    need = 20 if pr == 6 else 8 if pr == 17 else 4
    if pr == 6 or pr == 17 or pr == 1 or pr == 58:
        if blen < need or tlen < need:
            return MALFORMED
    st[i] = OK
    proto[i] = pr
    v6[i] = is_v6
    iplen[i] = total
    tunnel[i] = False
    flags[i] = 0
    seq[i] = 0
    ack[i] = 0
    payoff[i] = -1
    paycap[i] = 0
    if pr == 6:
        doff = (np.int64(b[at + 12]) >> 4) * 4
        if doff < 20 or doff > tlen:
            return MALFORMED
        sport[i] = _u16(b, at)
        dport[i] = _u16(b, at + 2)
        seq[i] = _u32(b, at + 4)
        ack[i] = _u32(b, at + 8)
        flags[i] = b[at + 13]
        paylen[i] = tlen - doff
        if payload_at >= 0 and tlen - doff > 0:
            payoff[i] = payload_at + doff
            paycap[i] = max(0, min(tlen - doff, blen - doff))
    elif pr == 17:
        sp, dp = _u16(b, at), _u16(b, at + 2)
        sport[i] = sp
        dport[i] = dp
        paylen[i] = tlen - 8
        if payload_at >= 0 and tlen - 8 > 0:
            payoff[i] = payload_at + 8
            paycap[i] = max(0, min(tlen - 8, blen - 8))
        if not reassembled:
            if sp == 3544 or dp == 3544:
                return SLOW
            inner = min(blen, tlen) - 8
            if inner >= 40 and (b[at + 8] >> 4) == 6 and (
                    _is_teredo_prefix(b, at + 16) or _is_teredo_prefix(b, at + 32)):
                return SLOW
    elif pr == 1 or pr == 58:
        t = np.int64(b[at])
        cp = icmp6[t] if pr == 58 else icmp4[t]
        sport[i] = t
        dport[i] = cp if cp >= 0 else np.int64(b[at + 1])
        paylen[i] = tlen - 8
    else:
        sport[i] = 0
        dport[i] = 0
        paylen[i] = tlen
    return OK


@nb.njit(inline="always", **PACKET_LOOP)
def _set_addrs(out, i, u8, s_at, d_at, width):
    src, dst = out[4], out[5]
    if width == 4:
        for k in range(10):
            src[i, k] = 0
            dst[i, k] = 0
        for k in range(10, 12):
            src[i, k] = 0xFF
            dst[i, k] = 0xFF
        for k in range(4):
            src[i, 12 + k] = u8[s_at + k]
            dst[i, 12 + k] = u8[d_at + k]
    else:
        for k in range(16):
            src[i, k] = u8[s_at + k]
            dst[i, k] = u8[d_at + k]


@nb.njit(inline="always", **PACKET_LOOP)
def _frag_key(key, out, i, version, ident, pr):
    src, dst = out[4], out[5]
    key[0] = np.uint64(version) | (np.uint64(pr) << np.uint64(8)) | \
        (np.uint64(ident) << np.uint64(16))
    for w in range(2):
        a = np.uint64(0)
        b = np.uint64(0)
        for k in range(8):
            a = (a << np.uint64(8)) | np.uint64(src[i, 8 * w + k])
            b = (b << np.uint64(8)) | np.uint64(dst[i, 8 * w + k])
        key[1 + w] = a
        key[3 + w] = b


@nb.njit(inline="always", **PACKET_LOOP)
def _fragment(out, i, frag, hdr, key, version, ident, pr, offset, tlen, more, body, blen,
              head, icmp4, icmp6):
    """Account one IPv4/IPv6 fragment (`body[:blen]` its payload, `head` the bytes of IP
    header before it); FRAG_HELD until the datagram is complete, then its transport row."""
    _frag_key(key, out, i, version, ident, pr)
    done, n = account(*frag, key, out[0][i], offset, tlen, more, body, blen, hdr)
    if done < 0:
        _clear(out, i, FRAG_HELD)
        return FRAG_HELD
    return _transport(out, i, hdr, 0, n, done, head + done, pr, version == 6, -1, icmp4,
                      icmp6, True)


@nb.njit(inline="always", **PACKET_LOOP)
def _ipv4(out, i, u8, l3, end, frag, hdr, key, icmp4, icmp6):
    plen = end - l3
    if plen < 20 or (u8[l3] >> 4) != 4:
        return SLOW
    ihl = np.int64(u8[l3] & 15) * 4
    total = _u16(u8, l3 + 2)
    if ihl < 20 or plen < ihl or total < ihl:
        return SLOW
    pr = np.int64(u8[l3 + 9])
    _set_addrs(out, i, u8, l3 + 12, l3 + 16, 4)
    fo = _u16(u8, l3 + 6)
    blen = (total if total <= plen else plen) - ihl
    tlen = total - ihl
    if fo & 0x3FFF:
        return _fragment(out, i, frag, hdr, key, 4, _u16(u8, l3 + 4), pr, (fo & 0x1FFF) * 8,
                         tlen, (fo & 0x2000) != 0, u8[l3 + ihl:], blen, ihl, icmp4, icmp6)
    return _transport(out, i, u8, l3 + ihl, blen, tlen, total, pr, False, l3 + ihl, icmp4,
                      icmp6, False)


@nb.njit(inline="always", **PACKET_LOOP)
def _ipv6(out, i, u8, l3, end, frag, hdr, key, icmp4, icmp6):
    plen = end - l3
    if plen < 40 or (u8[l3] >> 4) != 6:
        return SLOW
    payload = _u16(u8, l3 + 4)
    nh = np.int64(u8[l3 + 6])
    off = 40
    fragmented, ident, fo_off, more = False, np.int64(0), np.int64(0), False
    while _is_ext(nh) or nh == 44:
        if off + 8 > plen:
            return SLOW
        if nh == 44:
            fo = _u16(u8, l3 + off + 2)
            fragmented, ident = True, _u32(u8, l3 + off + 4)
            fo_off, more = fo & 0xFFF8, (fo & 1) != 0
            nh = np.int64(u8[l3 + off])
            off += 8
        else:
            nh, off = np.int64(u8[l3 + off]), off + (np.int64(u8[l3 + off + 1]) + 1) * 8
    total = payload + 40
    tlen = total - off
    if tlen < 0:
        return SLOW
    blen = max(0, min(total, plen) - off)
    _set_addrs(out, i, u8, l3 + 8, l3 + 24, 16)
    if fragmented and (fo_off or more):
        # the kept header may start past the capture: give an empty body then
        body = u8[min(l3 + off, u8.shape[0]):]
        return _fragment(out, i, frag, hdr, key, 6, ident, nh, fo_off, tlen, more, body, blen,
                         off, icmp4, icmp6)
    return _transport(out, i, u8, l3 + off, blen, tlen, total, nh, True, l3 + off, icmp4,
                      icmp6, False)


@nb.njit(**PACKET_LOOP)
def decode_records(u8, offset, caplen, linktype, ts, frag, out, slow, icmp4, icmp6, hdr, key):
    """Decode every record into row i of `out` (record order); records the slow path must
    take get `slow[i] = 1`. Returns how many those are. `hdr` (HEADER bytes) and `key` (5
    words) are scratch space."""
    n_slow = 0
    for i in range(offset.shape[0]):
        o = offset[i]
        end = o + caplen[i]
        out[0][i] = ts[i]
        et, l3 = _link(u8, linktype[i], o, end)
        if et == 0x0800:
            status = _ipv4(out, i, u8, l3, end, frag, hdr, key, icmp4, icmp6)
        elif et == 0x86DD:
            status = _ipv6(out, i, u8, l3, end, frag, hdr, key, icmp4, icmp6)
        elif et == SLOW:
            status = SLOW
        else:
            status = NON_IP
        if status == SLOW:
            slow[i] = 1
            n_slow += 1
        elif status == MALFORMED or status == NON_IP:
            _clear(out, i, status)
    return n_slow

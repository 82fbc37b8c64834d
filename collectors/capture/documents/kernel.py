"""The compiled writer of flow documents as JSON lines (documents/flowjson.py prepares its
columns): for each `layout.RECORD` row, the bytes `codec.encode(doc) + b"\\n"` of the
document documents/flows.py builds as a dict, field for field in the same order.

Computed here per row: the uid and event id (BLAKE2b), the community id (SHA-1, base64),
IPv4 address text, ISO times, the direction, integers, the sorted `related.ip`, `repr(start)`
(the uid's input) of a start in whole microseconds. Prepared in bulk by the caller: times in
rounded microseconds, durations, the other starts' `repr`, services, and texts the kernel does
not derive itself (IPv6 addresses, community ids of port-less protocols). `nets`: (3, k, 16)
uint8 - internal networks, their masks, and (in [2, :, 0]) whether each is IPv6.
Rows marked `skip` are left empty (zero-length line) for the caller to fill.
"""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.documents.hashing import blake2b_16, sha1
from collectors.capture.documents.textbytes import (HEX, copy_bytes, digits, hex_digits,
                                                    integer, iso_time, less, put_byte)
from collectors.capture.kernels.jit import PACKET_LOOP

_PIECES = (
    b'{"@timestamp":"',                                                     # 0
    b'Z","event":{"id":"',                                                  # 1
    b'","kind":"event","category":["network"],"type":["connection","',      # 2
    b'end',                                                                 # 3
    b'info',                                                                # 4
    b'"],"dataset":"watchkeeper.flow","module":"watchkeeper","start":"',    # 5
    b'Z","end":"',                                                          # 6
    b'Z","duration":',                                                      # 7
    b'},"observer":{"name":',                                               # 8
    b',"type":"sensor"},"source":{"ip":"',                                  # 9
    b'","port":',                                                           # 10
    b',"bytes":',                                                           # 11
    b',"packets":',                                                         # 12
    b'},"destination":{"ip":"',                                             # 13
    b'},"network":{"transport":"',                                          # 14
    b'","community_id":"',                                                  # 15
    b',"direction":"',                                                      # 16
    b'","protocol":"',                                                      # 17
    b'"},"related":{"ip":["',                                               # 18
    b'","',                                                                 # 19
    b'"]},"watchkeeper":{"flow":{"uid":"',                                  # 20
    b'","conn_state":"',                                                    # 21
    b'","history":"',                                                       # 22
    b'","orig_bytes":',                                                     # 23
    b',"resp_bytes":',                                                      # 24
    b',"orig_ip_bytes":',                                                   # 25
    b',"resp_ip_bytes":',                                                   # 26
    b',"final":true',                                                       # 27
    b',"final":false',                                                      # 28
    b',"tunnelled":true',                                                   # 29
    b',"evicted":true',                                                     # 30
    b'}}',                                                                  # 31
    b'}\n',                                                                 # 32
    b'flow\x1f',                                                            # 33 uid input
)
LIT = np.frombuffer(b"".join(_PIECES), np.uint8)
LIT_OFF = np.cumsum([0] + [len(p) for p in _PIECES]).astype(np.int64)
B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                    np.uint8)


@nb.njit(**PACKET_LOOP)
def _lit(out, pos, k):
    return copy_bytes(out, pos, LIT, LIT_OFF[k], LIT_OFF[k + 1])


@nb.njit(**PACKET_LOOP)
def _internal(r, side, nets, masks, nets_v6):
    """networks.is_internal of endpoint `side` (nets, masks: 16 bytes, IPv4 in the last 4)."""
    for k in range(len(nets_v6)):
        if nets_v6[k] != r.v6:
            continue
        inside = True
        for i in range(16):
            if r.ip[side, i] & masks[k, i] != nets[k, i]:
                inside = False
                break
        if inside:
            return True
    return False


@nb.njit(**PACKET_LOOP)
def _ipv4(out, pos, ip):
    pos = integer(out, pos, ip[12])
    for k in range(13, 16):
        pos = integer(out, put_byte(out, pos, 46), ip[k])           # "."
    return pos


@nb.njit(**PACKET_LOOP)
def _address(out, pos, r, side, texts, text_off):
    """Address text of endpoint `side`: supplied (IPv6) or written here (IPv4)."""
    a, b = text_off[side, 0], text_off[side, 1]
    if b > a:
        return copy_bytes(out, pos, texts, a, b)
    return _ipv4(out, pos, r.ip[side])


@nb.njit(**PACKET_LOOP)
def _community_id(out, pos, r, buf, words, digest):
    """Community ID v1 (seed 0) of a TCP/UDP/SCTP row: "1:" + base64(SHA-1)."""
    first, width = (0, 16) if r.v6 else (12, 4)
    lo, hi = 0, 1                                  # the spec's order: smaller endpoint first
    same = True
    for k in range(first, 16):
        if r.ip[0, k] != r.ip[1, k]:
            if r.ip[0, k] > r.ip[1, k]:
                lo, hi = 1, 0
            same = False
            break
    if same and r.port[0] > r.port[1]:
        lo, hi = 1, 0
    buf[0] = 0
    buf[1] = 0
    for k in range(width):
        buf[2 + k] = r.ip[lo, first + k]
        buf[2 + width + k] = r.ip[hi, first + k]
    at = 2 + 2 * width
    buf[at] = r.proto
    buf[at + 1] = 0
    buf[at + 2] = r.port[lo] >> 8
    buf[at + 3] = r.port[lo] & 255
    buf[at + 4] = r.port[hi] >> 8
    buf[at + 5] = r.port[hi] & 255
    sha1(buf, at + 6, words, digest)
    out[pos] = 49        # "1"
    out[pos + 1] = 58    # ":"
    pos += 2
    for i in range(0, 21, 3):
        n = (np.int64(digest[i]) << 16) | (np.int64(digest[i + 1]) << 8 if i + 1 < 20 else 0) \
            | (np.int64(digest[i + 2]) if i + 2 < 20 else 0)
        out[pos] = B64[(n >> 18) & 63]
        out[pos + 1] = B64[(n >> 12) & 63]
        out[pos + 2] = B64[(n >> 6) & 63] if i + 1 < 20 else 61
        out[pos + 3] = B64[n & 63] if i + 2 < 20 else 61
        pos += 4
    return pos


@nb.njit(**PACKET_LOOP)
def _start_repr(out, pos, micros):
    """repr() of a start time that is whole microseconds, 1e9 <= t < 2**32 (the caller
    checked; flowjson.start_reprs says why this is repr): "1700000000.12", "1700000000.0"."""
    pos = put_byte(out, integer(out, pos, micros // 1_000_000), 46)        # "."
    frac, width = micros % 1_000_000, 6
    while width > 1 and frac % 10 == 0:
        frac //= 10
        width -= 1
    return digits(out, pos, frac, width)


@nb.njit(**PACKET_LOOP)
def _uid(out, pos, r, start_micros, reprs, a, b, buf, words, digest):
    """"C" + the first 20 hex digits of BLAKE2b-128("flow\\x1f" + key hex + "\\x1f" +
    repr(start)), as flows/flow.py's flow_uid. The caller's repr is reprs[a:b]; none
    (a == b): written here from the start's microseconds."""
    at = np.uint64(_lit(buf, 0, 33))
    for k in range(5):
        w = r.key[k]
        for s in range(8):
            byte = (w >> np.uint64(8 * s)) & np.uint64(255)
            buf[at] = HEX[byte >> np.uint64(4)]
            buf[at + np.uint64(1)] = HEX[byte & np.uint64(15)]
            at += np.uint64(2)
    at = put_byte(buf, np.int64(at), 31)
    at = copy_bytes(buf, at, reprs, a, b) if a < b else _start_repr(buf, at, start_micros)
    blake2b_16(buf, at, words, digest)
    return hex_digits(out, put_byte(out, pos, 67), digest, 10)           # "C" + 20 hex digits


@nb.njit(**PACKET_LOOP)
def _event_id(out, pos, uid, obs_key, buf, words, digest):
    """BLAKE2b-128 hex of observer + "\\x1f" + uid (schema.stable_id(observer, uid))."""
    at = copy_bytes(buf, 0, obs_key, 0, len(obs_key))
    at = copy_bytes(buf, at, uid, 0, 21)
    blake2b_16(buf, at, words, digest)
    return hex_digits(out, pos, digest, 16)


@nb.njit(**PACKET_LOOP)
def _text(out, pos, strings, string_off, k):
    return copy_bytes(out, pos, strings, string_off[k], string_off[k + 1])


@nb.njit(**PACKET_LOOP)
def _endpoints(out, pos, r, texts, text_off):
    """`"source":{…},"destination":{…` from the address on; returns the end and where the
    two address texts are (for `related.ip`)."""
    src0 = pos
    pos = _address(out, pos, r, 0, texts, text_off)
    src1 = dst0 = dst1 = pos
    for side in range(2):
        pos = _lit(out, pos, 10)
        pos = integer(out, pos, r.port[side])
        pos = _lit(out, pos, 11)
        pos = integer(out, pos, r.ipb[side])
        pos = _lit(out, pos, 12)
        pos = integer(out, pos, r.pkts[side])
        if side == 0:
            pos = _lit(out, pos, 13)
            dst0 = pos
            pos = _address(out, pos, r, 1, texts, text_off)
            dst1 = pos
    return pos, src0, src1, dst0, dst1


@nb.njit(**PACKET_LOOP)
def _network(out, pos, r, nets, service, texts, text_off, strings, string_off, buf, words,
             digest):
    """`"network":{…}` from the transport's value on (up to its closing brace)."""
    pos = _text(out, pos, strings, string_off, 13 + r.proto)
    pos = _lit(out, pos, 15)
    a, b = text_off[2, 0], text_off[2, 1]
    pos = copy_bytes(out, pos, texts, a, b) if b > a else \
        _community_id(out, pos, r, buf, words, digest)
    pos = _lit(out, put_byte(out, pos, 34), 11)        # the community id's closing quote
    pos = integer(out, pos, r.ipb[0] + r.ipb[1])
    pos = _lit(out, pos, 12)
    pos = integer(out, pos, np.uint64(r.pkts[0]) + np.uint64(r.pkts[1]))
    pos = _lit(out, pos, 16)
    direction = (2 if _internal(r, 0, nets[0], nets[1], nets[2, :, 0]) else 0) \
        + (1 if _internal(r, 1, nets[0], nets[1], nets[2, :, 0]) else 0)
    pos = _text(out, pos, strings, string_off, 269 + direction)
    if service >= 0:
        pos = _lit(out, pos, 17)
        pos = _text(out, pos, strings, string_off, 273 + service)
    return pos


@nb.njit(**PACKET_LOOP)
def _flow(out, pos, r, uid, strings, string_off):
    """`"watchkeeper":{"flow":{…}}` from the uid's value on."""
    pos = copy_bytes(out, pos, uid, 0, 21)
    pos = _lit(out, pos, 21)
    pos = _text(out, pos, strings, string_off, r.state)
    pos = _lit(out, pos, 22)
    pos = copy_bytes(out, pos, r.history, 0, np.int64(r.hlen))
    for k in range(4):
        pos = _lit(out, pos, 23 + k)
        pos = integer(out, pos, r.bytes[k] if k < 2 else r.ipb[k - 2])
    pos = _lit(out, pos, 27 if r.final else 28)
    if r.tunnel:
        pos = _lit(out, pos, 29)
    if r.evicted:
        pos = _lit(out, pos, 30)
    return _lit(out, pos, 31)


@nb.njit(**PACKET_LOOP)
def _row(out, pos, r, micros, duration, reprs, repr_a, repr_b, nets, service, texts,
         text_off, strings, string_off, obs_json, obs_key, site_tail, buf, words, digest, uid):
    """One flow document's line at `pos`, in the dict's field order; returns its end. String
    table: conn states 0..12, transports 13..268 (by protocol number), directions 269..272,
    services from 273."""
    _uid(uid, 0, r, micros[0], reprs, repr_a, repr_b, buf, words, digest)
    pos = _lit(out, pos, 0)
    start = pos
    pos = iso_time(out, pos, micros[0])
    pos = _lit(out, pos, 1)
    pos = _event_id(out, pos, uid, obs_key, buf, words, digest)
    pos = _lit(out, pos, 2)
    pos = _lit(out, pos, 3 if r.final else 4)
    pos = _lit(out, pos, 5)
    pos = copy_bytes(out, pos, out, start, start + 26)
    pos = _lit(out, pos, 6)
    pos = iso_time(out, pos, micros[1])
    pos = _lit(out, pos, 7)
    pos = integer(out, pos, duration)
    pos = _lit(out, pos, 8)
    pos = copy_bytes(out, pos, obs_json, 0, len(obs_json))
    pos = _lit(out, pos, 9)
    pos, src0, src1, dst0, dst1 = _endpoints(out, pos, r, texts, text_off)
    pos = _lit(out, pos, 14)
    pos = _network(out, pos, r, nets, service, texts, text_off, strings, string_off, buf,
                   words, digest)
    pos = _lit(out, pos, 18)
    if less(out, dst0, dst1, src0, src1):
        src0, src1, dst0, dst1 = dst0, dst1, src0, src1
    pos = copy_bytes(out, pos, out, src0, src1)
    if src1 - src0 != dst1 - dst0 or less(out, src0, src1, dst0, dst1):
        pos = _lit(out, pos, 19)
        pos = copy_bytes(out, pos, out, dst0, dst1)
    pos = _lit(out, pos, 20)
    pos = _flow(out, pos, r, uid, strings, string_off)
    pos = copy_bytes(out, pos, site_tail, 0, len(site_tail))
    return _lit(out, pos, 32)


@nb.njit(**PACKET_LOOP)
def encode_flows(rows, skip, micros, duration, reprs, repr_off, nets, service, texts,
                 text_off, strings, string_off, obs_json, obs_key, site_tail, buf, words,
                 digest, uid, out, ends, line_bound):
    """Lines of the rows into `out` while a line of at most `line_bound` bytes still fits;
    ends[j] = end of row j's line. Returns the number of rows written."""
    pos = 0
    room = len(out) - line_bound
    n = len(rows)
    for j in range(n):
        if pos > room:
            return j
        if not skip[j]:
            pos = _row(out, pos, rows[j], micros[j], duration[j], reprs, repr_off[j],
                       repr_off[j + 1], nets, service[j], texts, text_off[j], strings,
                       string_off, obs_json, obs_key, site_tail, buf, words, digest, uid)
        ends[j] = pos
    return n

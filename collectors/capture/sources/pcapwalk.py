"""The compiled walk over classic pcap record headers (numba; see kernels/jit.py)."""
from __future__ import annotations

import numba as nb
import numpy as np

from collectors.capture.kernels.jit import ALLOCATING, PACKET_LOOP


@nb.njit(**PACKET_LOOP)
def _u32(u8, p, big_endian):
    """The 32-bit word at u8[p]. Indexed unsigned (numba wraps a signed index that could be
    negative: a compare and an add per byte; documents/textbytes.py)."""
    q = np.uint64(p)
    b0, b1 = np.int64(u8[q]), np.int64(u8[q + np.uint64(1)])
    b2, b3 = np.int64(u8[q + np.uint64(2)]), np.int64(u8[q + np.uint64(3)])
    if big_endian:
        return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
    return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)


@nb.njit(**PACKET_LOOP)
def _complete_records(u8, big_endian, max_record):
    """How many complete records with a plausible caplen `u8` starts with."""
    n = u8.shape[0]
    count = 0
    off = 0
    while off + 16 <= n:
        caplen = _u32(u8, off + 8, big_endian)
        if caplen > max_record or off + 16 + caplen > n:
            break
        count += 1
        off += 16 + caplen
    return count


@nb.njit(**PACKET_LOOP)
def _fill(u8, big_endian, max_record, tick, offs, caplens, wirelens, ts):
    n = u8.shape[0]
    k = 0
    off = 0
    bad = -1
    while off + 16 <= n:
        caplen = _u32(u8, off + 8, big_endian)
        if caplen > max_record:
            bad = off
            break
        if off + 16 + caplen > n:
            break
        offs[k] = off
        caplens[k] = caplen
        wirelens[k] = _u32(u8, off + 12, big_endian)
        ts[k] = np.float64(_u32(u8, off, big_endian)) + \
            np.float64(_u32(u8, off + 4, big_endian)) * tick
        k += 1
        off += 16 + caplen
    return off, bad


@nb.njit(**ALLOCATING)
def walk_pcap(u8, big_endian, max_record, tick):
    """Record headers of classic pcap: (header offsets, caplen, wirelen, time, end of the
    last complete record, offset of a corrupt header or -1). Counted first, so the arrays
    hold exactly the records present; the loops run without numba's reference counting
    (kernels/jit.py: PACKET_LOOP), which cost ~20 % here."""
    cap = _complete_records(u8, big_endian, max_record)
    offs = np.empty(cap, np.int64)
    caplens = np.empty(cap, np.int64)
    wirelens = np.empty(cap, np.int64)
    ts = np.empty(cap, np.float64)
    off, bad = _fill(u8, big_endian, max_record, tick, offs, caplens, wirelens, ts)
    return offs, caplens, wirelens, ts, off, bad


@nb.njit(**ALLOCATING)
def walk_tpacket(block, first, count):
    """Frames of one TPACKET_V3 ring block (sources/live.py): (frame offsets in `block`,
    captured length, wire length, time). Stops early at the last frame (next offset 0) or at
    a header that would run past the block, whatever `count` claims (the kernel's count is
    right; a guard, not a case)."""
    offs = np.empty(count, np.int64)
    caplens = np.empty(count, np.int64)
    wirelens = np.empty(count, np.int64)
    ts = np.empty(count, np.float64)
    n = block.shape[0]
    p = first
    k = 0
    while k < count and p + 28 <= n:
        mac = np.int64(block[p + 24]) | (np.int64(block[p + 25]) << 8)
        snap = _u32(block, p + 12, False)
        if p + mac + snap > n:
            break
        offs[k] = p + mac
        caplens[k] = snap
        wirelens[k] = _u32(block, p + 16, False)
        ts[k] = np.float64(_u32(block, p + 4, False)) + \
            np.float64(_u32(block, p + 8, False)) / 1e9
        k += 1
        step = _u32(block, p, False)
        if step == 0:                   # the block's last frame
            break
        p += step
    return offs[:k].copy(), caplens[:k].copy(), wirelens[:k].copy(), ts[:k].copy()
